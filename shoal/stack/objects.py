"""The plan objects for what a stack needs beyond what ``ServiceSpec`` carries today.

Networks, volumes, secrets, configs, a service's mounts and network attachments, and the container
settings the protocol has no field for yet (read-only root, capabilities, stop signal, ulimits,
logging, endpoint mode, depends_on) are kept here as plain dataclasses with their final names
(``NAME_x``), so the deploy step can map them once the services, networking and secrets work lands.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal.proto import types_pb2 as pb

NAMESPACE_LABEL = "com.docker.stack.namespace"
IMAGE_LABEL = "com.docker.stack.image"


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
