"""Naming and converting a stack's networks, volumes, secrets and configs, and each service's use of them.

A stack-created object is named ``NAMESPACE_key`` unless the file sets ``name:``; an external one
keeps its ``name:`` (or its key) and is never created or removed by the stack. A service with no
``networks:`` joins the stack's ``default`` network, which exists only when something uses it.
"""

from __future__ import annotations

from collections.abc import Mapping

from shoal.stack.model_file import ComposeFile, Network, Secret
from shoal.stack.model_service import FileRef, Service
from shoal.stack.objects import NAMESPACE_LABEL, FileRefPlan, MountPlan, NetworkAttachment, ObjectPlan


def object_name(namespace: str, key: str, name: str | None, external: bool | None) -> str:
    """The name an object has in the cluster."""
    if name:
        return name
    return key if external else f"{namespace}_{key}"


def _service_networks(svc: Service) -> list[str]:
    return list(svc.networks) or ["default"]


def stack_objects(compose: ComposeFile, namespace: str) -> list[ObjectPlan]:
    """Every network, volume, secret and config of the stack, with its final name."""
    out: list[ObjectPlan] = []
    used = {n for svc in compose.services.values() for n in _service_networks(svc)}
    networks = dict(compose.networks)
    if "default" in used and "default" not in networks:
        networks["default"] = Network()
    for key, net in sorted(networks.items()):
        out.append(_object("network", namespace, key, net, driver=net.driver or "overlay",
                           subnets=tuple(c.subnet for c in (net.ipam.config if net.ipam else []) if c.subnet),
                           internal=bool(net.internal), attachable=bool(net.attachable)))  # fmt: skip
    for key, vol in sorted(compose.volumes.items()):
        out.append(_object("volume", namespace, key, vol, driver=vol.driver or "local"))
    for kind, objs in (("secret", compose.secrets), ("config", compose.configs)):
        for key, obj in sorted(objs.items()):
            out.append(_object(kind, namespace, key, obj, file=obj.file or "", environment=obj.environment or "",
                               content=getattr(obj, "content", None)))  # fmt: skip
    return out


def _object(kind: str, namespace: str, key: str, obj: Network | Secret | object, **extra: object) -> ObjectPlan:
    external = bool(getattr(obj, "external", False))
    labels = dict(getattr(obj, "labels", {}) or {})
    if not external:
        labels[NAMESPACE_LABEL] = namespace
    options = getattr(obj, "driver_opts", {}) or {}
    return ObjectPlan(
        kind=kind,
        key=key,
        name=object_name(namespace, key, getattr(obj, "name", None), external),
        external=external,
        labels=tuple(sorted(labels.items())),
        options=tuple(sorted(options.items())),
        **extra,  # type: ignore[arg-type]  # the per-kind fields of ObjectPlan
    )


def network_attachments(compose: ComposeFile, namespace: str, svc: Service) -> list[NetworkAttachment]:
    """The networks a service joins, by full name, with its aliases."""
    out = []
    for key in _service_networks(svc):
        net = compose.networks.get(key) or Network()
        conf = svc.networks.get(key)
        out.append(NetworkAttachment(object_name(namespace, key, net.name, net.external), tuple(conf.aliases) if conf else ()))
    return out


def mounts(compose: ComposeFile, namespace: str, svc: Service) -> list[MountPlan]:
    """A service's mounts; named volume sources become the volume's full name."""
    out = []
    for m in svc.volumes:
        source = m.source or ""
        if m.type == "volume" and source:
            vol = compose.volumes[source]
            source = object_name(namespace, source, vol.name, vol.external)
        out.append(MountPlan(
            type=m.type, target=m.target, source=source, read_only=bool(m.read_only),
            volume_nocopy=bool(m.volume and m.volume.nocopy), volume_subpath=(m.volume.subpath or "") if m.volume else "",
            bind_propagation=(m.bind.propagation or "") if m.bind else "",
            tmpfs_size=(m.tmpfs.size or 0) if m.tmpfs else 0, tmpfs_mode=(m.tmpfs.mode or 0) if m.tmpfs else 0,
        ))  # fmt: skip
    out.extend(MountPlan(type="tmpfs", target=t) for t in svc.tmpfs)
    return out


def file_refs(declared: Mapping[str, Secret], namespace: str, refs: list[FileRef], prefix: str) -> list[FileRefPlan]:
    """Secrets (mounted under ``/run/secrets/``) or configs (under ``/``) a service receives."""
    out = []
    for ref in refs:
        obj = declared[ref.source]
        target = ref.target or ref.source
        if not target.startswith("/"):
            target = prefix + target
        out.append(FileRefPlan(
            name=object_name(namespace, ref.source, obj.name, obj.external), target=target,
            uid=ref.uid or "0", gid=ref.gid or "0", mode=ref.mode if ref.mode is not None else 0o444,
        ))  # fmt: skip
    return out
