"""The control API's secrets and configs: their RPCs, and the references a service spec makes to them.

Kept apart from ``controlapi`` (which mixes it in) so each stays one concern. A secret's data is
sealed (``secretbox``) before the create transaction is built, so the clear bytes never reach etcd; no
read returns them (``secret inspect`` shows the name, labels and times only). A config is stored and
shown as is. A service spec's references are resolved by name (or id) to ids before the spec is
stored; an unknown name is refused with one message and nothing is written. The two writes that can race
conflict in etcd: a service's write compares that each object it refers to still exists, and a removal's
delete compares that no service was created or changed since it read them (and found no user), so one
of the two fails and no service is left pointing at a missing object. Removing an object a service
uses is refused, naming the services.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc

from shoal import log, secretspec
from shoal.ids import new_id
from shoal.manager import secretbox
from shoal.manager.cache import ClusterCache
from shoal.manager.secretbox import SecretBox
from shoal.manager.store import objects
from shoal.manager.store.base import Compare, Store
from shoal.manager.store.kinds import Kind
from shoal.manager.store.writes import Conflict, Write, Writer
from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb

_log = log.get(__name__)
REMOVE_ATTEMPTS = 10  # reads of the services by one rm whose delete lost a race to a service write


def find(objs: dict[str, Any], ref: str) -> Any:
    """By full id, then name, then unique id prefix (docker's order)."""
    if ref in objs:
        return objs[ref]
    named = [o for o in objs.values() if o.spec.name == ref]
    if len(named) == 1:
        return named[0]
    pref = [o for oid, o in objs.items() if oid.startswith(ref)] if ref else []
    return pref[0] if len(pref) == 1 else None


def users(kind: str, obj_id: str, services: list[pb.Service]) -> list[str]:
    """Names of the services whose spec refers to the secret or config ``obj_id`` (sorted)."""
    out = []
    for svc in services:
        c = svc.spec.container
        ids = [r.secret_id for r in c.secrets] if kind == "secret" else [r.config_id for r in c.configs]
        if obj_id in ids:
            out.append(svc.spec.name)
    return sorted(out)


def resolve_refs(container: pb.ContainerSpec, secrets: dict[str, pb.Secret], configs: dict[str, pb.Config]) -> str | None:
    """Set each reference's id (and canonical name) in place; the error for the first unknown one."""
    for sref in container.secrets:
        sec = find(secrets, sref.secret_name or sref.secret_id)
        if sec is None:
            return f"secret not found: {sref.secret_name or sref.secret_id}"
        sref.secret_id, sref.secret_name = sec.id, sec.spec.name
    for cref in container.configs:
        cfg = find(configs, cref.config_name or cref.config_id)
        if cfg is None:
            return f"config not found: {cref.config_name or cref.config_id}"
        cref.config_id, cref.config_name = cfg.id, cfg.spec.name
    return None


def file_sizes(container: pb.ContainerSpec, secrets: dict[str, pb.Secret], configs: dict[str, pb.Config]) -> list[int]:
    """The clear size of each file the references (resolved to ids) give a task."""
    sizes = [max(len(secrets[r.secret_id].data_sealed) - secretbox.OVERHEAD, 0) for r in container.secrets if r.secret_id in secrets]
    return sizes + [len(configs[r.config_id].spec.data) for r in container.configs if r.config_id in configs]


def refs_exist(container: pb.ContainerSpec) -> Write:
    """Compares a service write makes: every secret and config it refers to still exists."""
    compares = [Compare(objects.secrets.key(r.secret_id), "create", "!=", 0) for r in container.secrets]
    compares += [Compare(objects.configs.key(r.config_id), "create", "!=", 0) for r in container.configs]
    return Write(tuple(compares), ())


def secret_view(sec: pb.Secret, version: int) -> pb.Secret:
    """What a client sees of a secret: never its data, sealed or not."""
    out = pb.Secret(id=sec.id, spec=pb.SecretSpec(name=sec.spec.name, labels=sec.spec.labels))
    out.meta.CopyFrom(sec.meta)
    out.meta.version = version
    return out


class SecretAPI:
    """The secret and config RPCs (mixed into ``ControlAPI``, which provides store, cache and writer)."""

    store: Store
    cache: ClusterCache
    writer: Writer
    secret_box: Callable[[], SecretBox | None]

    def _kind_objs(self, kind: str) -> dict[str, Any]:
        return {k: v.obj for k, v in self.cache.objects[kind].items()}

    async def _find(self, kind: str, ref: str, context: grpc.aio.ServicerContext) -> Any:
        obj = find(self._kind_objs(kind), ref)
        if obj is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"{kind} not found: {ref}")
        return obj

    async def _check_spec(self, kind: str, spec: pb.SecretSpec | pb.ConfigSpec, context: grpc.aio.ServicerContext) -> None:
        try:
            secretspec.check_name(kind, spec.name)
            secretspec.check_data(kind, spec.data)
            secretspec.check_labels(dict(spec.labels))
        except secretspec.SecretSpecError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    async def _create(self, kind: str, store_kind: Kind, obj: Any, context: grpc.aio.ServicerContext) -> None:
        try:
            rev = await self.writer.apply(store_kind.create(obj))
        except Conflict:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, f"{kind} {obj.spec.name} already exists")
        await self.cache.wait_for(rev, 5.0)
        _log.info(f"{kind} created", name=obj.spec.name, id=obj.id)  # never the data

    async def _remove(self, kind: str, store_kind: Kind, ref: str, context: grpc.aio.ServicerContext) -> None:
        """Delete the object unless a service uses it. The delete compares that no service was created or
        changed since the services were read, so a ``svc create/update`` that adds a reference in between
        makes it fail (read again, then refuse); the service's own write compares that the object exists."""
        obj = await self._find(kind, ref, context)
        for _ in range(REMOVE_ATTEMPTS):
            services, seen = await objects.services.list_at(self.store)  # etcd itself, not a mirror that may lag
            using = users(kind, obj.id, [v.obj for v in services])
            if using:
                await context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"{kind} '{obj.spec.name}' is in use by the following service{'s' if len(using) > 1 else ''}: {', '.join(using)}",
                )
            try:
                rev = await self.writer.apply(Write.join([store_kind.delete(obj), objects.services.unchanged_since(seen)]))
            except Conflict:
                continue  # a service was created or changed since the read: does it use the object now?
            await self.cache.wait_for(rev, 5.0)
            _log.info(f"{kind} removed", name=obj.spec.name, id=obj.id)
            return
        await context.abort(grpc.StatusCode.ABORTED, f"services kept changing while {kind} '{obj.spec.name}' was removed; try again")

    async def missing_ref(self, container: pb.ContainerSpec) -> str | None:
        """After a service write lost a race: the first secret or config it refers to that is gone (else None)."""
        for r in container.secrets:
            if await objects.secrets.get(self.store, r.secret_id) is None:
                return f"secret not found: {r.secret_name or r.secret_id}"
        for c in container.configs:
            if await objects.configs.get(self.store, c.config_id) is None:
                return f"config not found: {c.config_name or c.config_id}"
        return None

    async def _check_refs(self, spec: pb.ServiceSpec, context: grpc.aio.ServicerContext) -> None:
        """Resolve the spec's secret and config references to ids; INVALID_ARGUMENT for an unknown one."""
        secrets, configs = self._kind_objs("secret"), self._kind_objs("config")
        problem = resolve_refs(spec.container, secrets, configs)
        if problem is None:
            try:
                secretspec.check_task_files(file_sizes(spec.container, secrets, configs))
            except secretspec.SecretSpecError as exc:
                problem = str(exc)
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid service spec: {problem}")

    # ---- secrets -------------------------------------------------------------------------------
    async def CreateSecret(self, request: cpb.CreateSecretRequest, context: grpc.aio.ServicerContext) -> cpb.CreateSecretResponse:
        await self._check_spec("secret", request.spec, context)
        box = self.secret_box()
        if box is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "this manager holds no cluster data key: secrets cannot be stored")
        sec = pb.Secret(id=new_id(), spec=pb.SecretSpec(name=request.spec.name, labels=request.spec.labels))
        sec.data_sealed = box.seal(sec.id, request.spec.data)
        sec.meta.created_at_ns = sec.meta.updated_at_ns = time.time_ns()
        await self._create("secret", objects.secrets, sec, context)
        return cpb.CreateSecretResponse(secret=secret_view(sec, self.cache.rev("secret", sec.id)))

    async def GetSecret(self, request: cpb.GetSecretRequest, context: grpc.aio.ServicerContext) -> cpb.GetSecretResponse:
        sec = await self._find("secret", request.secret_id, context)
        return cpb.GetSecretResponse(secret=secret_view(sec, self.cache.rev("secret", sec.id)))

    async def ListSecrets(self, request: cpb.ListSecretsRequest, context: grpc.aio.ServicerContext) -> cpb.ListSecretsResponse:
        secs = sorted(self._kind_objs("secret").values(), key=lambda s: s.spec.name)
        return cpb.ListSecretsResponse(secrets=[secret_view(s, self.cache.rev("secret", s.id)) for s in secs])

    async def RemoveSecret(self, request: cpb.RemoveSecretRequest, context: grpc.aio.ServicerContext) -> cpb.RemoveSecretResponse:
        await self._remove("secret", objects.secrets, request.secret_id, context)
        return cpb.RemoveSecretResponse()

    # ---- configs -------------------------------------------------------------------------------
    def _config_view(self, cfg: pb.Config) -> pb.Config:
        out = pb.Config()
        out.CopyFrom(cfg)
        out.meta.version = self.cache.rev("config", cfg.id)
        return out

    async def CreateConfig(self, request: cpb.CreateConfigRequest, context: grpc.aio.ServicerContext) -> cpb.CreateConfigResponse:
        await self._check_spec("config", request.spec, context)
        cfg = pb.Config(id=new_id(), spec=request.spec)
        cfg.meta.created_at_ns = cfg.meta.updated_at_ns = time.time_ns()
        await self._create("config", objects.configs, cfg, context)
        return cpb.CreateConfigResponse(config=self._config_view(cfg))

    async def GetConfig(self, request: cpb.GetConfigRequest, context: grpc.aio.ServicerContext) -> cpb.GetConfigResponse:
        return cpb.GetConfigResponse(config=self._config_view(await self._find("config", request.config_id, context)))

    async def ListConfigs(self, request: cpb.ListConfigsRequest, context: grpc.aio.ServicerContext) -> cpb.ListConfigsResponse:
        cfgs = sorted(self._kind_objs("config").values(), key=lambda c: c.spec.name)
        return cpb.ListConfigsResponse(configs=[self._config_view(c) for c in cfgs])

    async def RemoveConfig(self, request: cpb.RemoveConfigRequest, context: grpc.aio.ServicerContext) -> cpb.RemoveConfigResponse:
        await self._remove("config", objects.configs, request.config_id, context)
        return cpb.RemoveConfigResponse()
