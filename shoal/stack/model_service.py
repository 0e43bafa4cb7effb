"""One service of a compose file: what runs, with which files, ports, networks and health check.

Short and long syntaxes are both accepted and read into one long form (ports, volumes, secrets,
configs, networks, depends_on, env_file), so later stages see a single shape. Keys that are valid
compose but that shoal does not implement are listed in ``UNSUPPORTED`` and dropped here; the
loader reports them in one warning, never silently.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, field_serializer, model_validator

from shoal import mountspec
from shoal.stack import values
from shoal.stack.errors import describe
from shoal.stack.model_base import (
    Bytes,
    Command,
    Duration,
    Environment,
    FileMode,
    Int,
    Labels,
    Model,
    NonNegInt,
    PortNumber,
    StringList,
)
from shoal.stack.model_deploy import Deploy

UNSUPPORTED = frozenset(
    {
        "annotations", "attach", "blkio_config", "build", "cgroup", "cgroup_parent", "container_name",
        "cpu_count", "cpu_percent", "cpu_shares", "cpu_quota", "cpu_period", "cpu_rt_period", "cpu_rt_runtime",
        "cpus", "cpuset", "credential_spec", "develop", "device_cgroup_rules", "devices",
        "domainname", "expose", "extends", "external_links", "extra_hosts", "gpus",
        "ipc", "isolation", "label_file", "links", "mac_address", "mem_limit", "mem_reservation",
        "mem_swappiness", "memswap_limit", "models", "network_mode", "oom_kill_disable", "oom_score_adj", "pid",
        "pids_limit", "platform", "post_start", "pre_stop", "privileged", "profiles", "provider", "pull_policy",
        "pull_refresh_after", "restart", "runtime", "scale", "security_opt", "shm_size", "stdin_open",
        "storage_opt", "tty", "use_api_socket", "userns_mode", "uts", "volumes_from",
    }
)
"""Valid compose service keys that shoal accepts and ignores (with a warning)."""


class Port(Model):
    """A published port, long syntax."""

    target: PortNumber
    published: PortNumber | None = None
    host_ip: str | None = None
    protocol: Literal["tcp", "udp", "sctp"] | None = None
    mode: Literal["ingress", "host"] | None = None
    name: str | None = None
    app_protocol: str | None = None


def _port_entry(value: Any) -> Any:
    return [value] if isinstance(value, dict) else values.parse_port(value)


PortGroup = Annotated[list[Port], BeforeValidator(_port_entry)]
"""One item of ``ports:``; a short-syntax range expands into several ports."""


class BindOptions(Model):
    propagation: Literal[values.PROPAGATIONS] | None = None  # type: ignore[valid-type]  # a tuple of literals
    create_host_path: bool | None = None
    selinux: Literal["z", "Z"] | None = None


def _subpath(value: str) -> str:
    try:
        return mountspec.clean_subpath(value)
    except mountspec.MountError as exc:
        raise ValueError(str(exc)) from None


class VolumeOptions(Model):
    nocopy: bool | None = None
    subpath: Annotated[str, AfterValidator(_subpath)] | None = None


class TmpfsOptions(Model):
    size: Bytes | None = None
    mode: FileMode | None = None


class Mount(Model):
    """A volume, bind or tmpfs mount, long syntax."""

    type: Literal["volume", "bind", "tmpfs", "npipe", "cluster", "image"]
    source: str | None = None
    target: str
    read_only: bool | None = None
    consistency: str | None = None
    bind: BindOptions | None = None
    volume: VolumeOptions | None = None
    tmpfs: TmpfsOptions | None = None

    @model_validator(mode="after")
    def _rules(self) -> Mount:
        if not self.target.startswith("/"):
            raise ValueError(f"target {self.target!r} must be an absolute path")
        if self.type in ("npipe", "cluster", "image"):
            raise ValueError(f"mount type {self.type!r} is not supported (volume, bind or tmpfs)")
        if self.type == "tmpfs" and self.source:
            raise ValueError("a tmpfs mount has no source")
        if self.type == "bind" and not self.source:
            raise ValueError("a bind mount needs a source")
        for opt in ("bind", "volume", "tmpfs"):
            if getattr(self, opt) is not None and self.type != opt:
                raise ValueError(f"{opt} options cannot be used with a {self.type} mount")
        return self


MountEntry = Annotated[Mount, BeforeValidator(lambda v: v if isinstance(v, dict) else values.parse_volume(v))]


class FileRef(Model):
    """A secret or config given to a service."""

    source: str
    target: str | None = None
    uid: str | None = None
    gid: str | None = None
    mode: FileMode | None = None


FileRefEntry = Annotated[FileRef, BeforeValidator(lambda v: {"source": v} if isinstance(v, str) else v)]


class EnvFile(Model):
    """An ``env_file:`` entry; a missing required file is an error."""

    path: str
    required: bool = True
    format: str | None = None


def _env_files(value: Any) -> Any:
    items = [value] if isinstance(value, str) else value
    if isinstance(items, list):
        return [{"path": v} if isinstance(v, str) else v for v in items]
    return value


class Healthcheck(Model):
    """How a task's health is probed; ``test`` is kept in its list form."""

    test: Annotated[list[str] | None, BeforeValidator(lambda v: _health_test(v))] = None
    interval: Duration | None = None
    timeout: Duration | None = None
    retries: NonNegInt | None = None
    start_period: Duration | None = None
    start_interval: Duration | None = None
    disable: bool | None = None

    @model_validator(mode="after")
    def _disable_alone(self) -> Healthcheck:
        if self.disable and self.test and self.test != ["NONE"]:
            raise ValueError("test and disable cannot be set at the same time")
        return self


def _health_test(value: Any) -> Any:
    if isinstance(value, str):
        return ["CMD-SHELL", value]
    if isinstance(value, list):
        words = [values.scalar_text(v) for v in value]
        if not words or words[0] not in ("NONE", "CMD", "CMD-SHELL"):
            raise ValueError("a test list must start with NONE, CMD or CMD-SHELL")
        if words[0] != "NONE" and len(words) < 2:
            raise ValueError(f"{words[0]} needs a command after it")
        return words
    return value


class ServiceNetwork(Model):
    """A service's attachment to a network."""

    aliases: list[str] = []
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    link_local_ips: list[str] = []
    mac_address: str | None = None
    driver_opts: dict[str, str] = {}
    priority: Int | None = None
    gw_priority: Int | None = None
    interface_name: str | None = None


class Ulimit(Model):
    soft: Int
    hard: Int

    @model_validator(mode="after")
    def _order(self) -> Ulimit:
        if self.soft > self.hard:
            raise ValueError(f"soft limit {self.soft} is above the hard limit {self.hard}")
        return self


class Logging(Model):
    driver: str | None = None
    options: Annotated[dict[str, str | None], BeforeValidator(lambda v: values.mapping(v, bare=None))] = {}


class DependsOn(Model):
    condition: Literal["service_started", "service_healthy", "service_completed_successfully"] = "service_started"
    restart: bool | None = None
    required: bool = True


def _list_to_map(value: Any) -> Any:
    if isinstance(value, list):
        out: dict[Any, Any] = {}
        for item in value:
            if not isinstance(item, str):
                raise ValueError(f"expected a list of names, got {describe(item)} (use the mapping form for options)")
            out[item] = None
        return out
    return value


def _depends_on(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return {k: {} if v is None else v for k, v in _list_to_map(value).items()}
    return value


def _ulimit(value: Any) -> Any:
    return {"soft": value, "hard": value} if isinstance(value, int) and not isinstance(value, bool) else value


class Service(Model):
    """One service of a stack."""

    image: str | None = None
    command: Command = None
    entrypoint: Command = None
    environment: Environment = {}
    env_file: Annotated[list[EnvFile], BeforeValidator(_env_files)] = []
    ports: list[PortGroup] = []
    networks: Annotated[dict[str, ServiceNetwork | None], BeforeValidator(_list_to_map)] = {}
    volumes: list[MountEntry] = []
    secrets: list[FileRefEntry] = []
    configs: list[FileRefEntry] = []
    deploy: Deploy | None = None
    healthcheck: Healthcheck | None = None
    hostname: str | None = None
    user: str | None = None
    working_dir: str | None = None
    stop_grace_period: Duration | None = None
    stop_signal: str | None = None
    init: bool | None = None
    cap_add: list[str] = []
    cap_drop: list[str] = []
    read_only: bool | None = None
    tmpfs: StringList = []
    ulimits: dict[str, Annotated[Ulimit, BeforeValidator(_ulimit)]] = {}
    sysctls: Labels = {}
    group_add: StringList = []
    dns: StringList = []
    dns_search: StringList = []
    dns_opt: StringList = []
    labels: Labels = {}
    logging: Logging | None = None
    depends_on: Annotated[dict[str, DependsOn], BeforeValidator(_depends_on)] = {}

    @model_validator(mode="before")
    @classmethod
    def _drop_unsupported(cls, data: Any) -> Any:
        if isinstance(data, dict) and not UNSUPPORTED.isdisjoint(data):
            return {k: v for k, v in data.items() if k not in UNSUPPORTED}
        return data

    @field_serializer("ports")
    def _flat_ports(self, ports: list[list[Port]]) -> list[dict[str, Any]]:
        return [p.model_dump(exclude_none=True) for group in ports for p in group]

    def port_list(self) -> list[Port]:
        """Every published port, short-syntax ranges expanded."""
        return [p for group in self.ports for p in group]
