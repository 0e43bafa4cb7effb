"""The plan of a stack: its objects with their final names, and what ``ServiceSpec`` cannot carry yet.

Networks, volumes, secrets, configs, a service's mounts and network attachments, and the container
settings the protocol has no field for yet (read-only root, capabilities, stop signal, ulimits,
logging, endpoint mode, depends_on) are plain dataclasses here, so the deploy step can map them once
the services, networking and secrets work lands. Names follow docker: a stack-created object is
``NAMESPACE_key`` unless the file sets ``name:``; an external one keeps its ``name:`` (or its key)
and is never created or removed by the stack. A service with no ``networks:`` joins the stack's
``default`` network, which exists only when something uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shoal.proto import types_pb2 as pb
from shoal.stack import NAMESPACE_LABEL
from shoal.stack.model_file import ComposeFile, Network, Secret
from shoal.stack.model_service import FileRef, Service


@dataclass(frozen=True)
class NetworkAttachment:
    """A service on a network (``NAME_front``), with its DNS aliases."""

    network: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class MountPlan:
    """A volume, bind or tmpfs mount; ``source`` is the full volume name for named volumes."""

    type: str
    target: str
    source: str = ""
    read_only: bool = False
    volume_nocopy: bool = False
    volume_subpath: str = ""
    bind_propagation: str = ""
    tmpfs_size: int = 0
    tmpfs_mode: int = 0


@dataclass(frozen=True)
class FileRefPlan:
    """A secret or config given to a service: the object's full name and where it appears."""

    name: str
    target: str
    uid: str = "0"
    gid: str = "0"
    mode: int = 0o444


@dataclass(frozen=True)
class ContainerExtras:
    """Container settings that ``ContainerSpec`` cannot carry yet."""

    read_only: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    stop_signal: str = ""
    ulimits: tuple[tuple[str, int, int], ...] = ()
    tmpfs: tuple[str, ...] = ()
    log_driver: str = ""
    log_options: tuple[tuple[str, str], ...] = ()
    endpoint_mode: str = "vip"


@dataclass
class ServicePlan:
    """One service of the stack: its spec as the control API takes it, and what waits for later."""

    key: str
    spec: pb.ServiceSpec
    networks: list[NetworkAttachment] = field(default_factory=list)
    mounts: list[MountPlan] = field(default_factory=list)
    secrets: list[FileRefPlan] = field(default_factory=list)
    configs: list[FileRefPlan] = field(default_factory=list)
    extras: ContainerExtras = field(default_factory=ContainerExtras)
    depends_on: dict[str, str] = field(default_factory=dict)
    """Full service name -> condition (service_started, service_healthy, service_completed_successfully)."""


@dataclass(frozen=True)
class ObjectPlan:
    """A network, volume, secret or config the stack creates (or uses, when ``external``)."""

    kind: str
    key: str
    name: str
    external: bool = False
    driver: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    options: tuple[tuple[str, str], ...] = ()
    file: str = ""
    environment: str = ""
    content: str | None = None
    subnets: tuple[str, ...] = ()
    internal: bool = False
    attachable: bool = False


@dataclass
class StackPlan:
    """Everything a stack deploys, under its namespace."""

    namespace: str
    services: dict[str, ServicePlan] = field(default_factory=dict)
    """By full service name."""
    objects: list[ObjectPlan] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[ObjectPlan]:
        return [o for o in self.objects if o.kind == kind]


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


def network_attachments(compose: ComposeFile, namespace: str, svc: Service, service_key: str) -> list[NetworkAttachment]:
    """The networks a service joins, by full name, with its aliases: those written, then the service's key
    (``db``), as docker adds it, so the stack's services reach each other by the names the file gives them."""
    out = []
    for key in _service_networks(svc):
        net = compose.networks.get(key) or Network()
        conf = svc.networks.get(key)
        aliases = tuple(dict.fromkeys([*(conf.aliases if conf else ()), service_key]))
        out.append(NetworkAttachment(object_name(namespace, key, net.name, net.external), aliases))
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
