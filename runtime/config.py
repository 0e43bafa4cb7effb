"""What a caller asks the runtime for (ContainerConfig) and what it reports back (ContainerInfo).

Plain dataclasses of the public surface. A ContainerConfig is what callers build (the worker from a
task, ``shoal run`` from its flags); ``shoal.runtime.spec.validate`` checks it once, at the client,
and turns it into the ContainerSpec that crosses the launcher's socket. ContainerInfo, ContainerStats
and ExecResult are what comes back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from shoal.runtime.errors import ConfigError

STATUS_CREATED = "created"
STATUS_RUNNING = "running"
STATUS_EXITED = "exited"


@dataclass
class ContainerConfig:
    """A container to create. Only ``id`` and ``image`` are required (and ``args`` for ``host``)."""

    id: str
    """Caller-chosen, ``[a-z0-9_.-]+``, at most 64 characters; unique within one runtime."""
    image: str
    """``host`` (the host root, read-only) or an image of the store: ``name[:tag]``, ``@sha256:``, id."""
    args: list[str] = field(default_factory=list)
    """The command: replaces the image's Cmd (docker's ``CMD...`` after the image). With ``host``
    (no Entrypoint/Cmd) it is the whole argv. ``argv[0]`` is looked up on PATH without a slash."""
    entrypoint: list[str] | None = None
    """Replaces the image's Entrypoint and drops its Cmd (``--entrypoint``); None keeps the image's."""
    env: list[str] = field(default_factory=list)
    """``KEY=VALUE`` entries; PATH, HOSTNAME and HOME get the usual defaults when absent."""
    workdir: str = ""
    """Absolute working directory inside the container; "" means the image's WorkingDir, or /."""
    user: str = ""
    """``""`` (image's User, else root), ``uid``, ``uid:gid``, ``name`` or ``name:group`` from the
    rootfs' /etc/passwd."""
    hostname: str = ""
    """Defaults to the first 12 characters of the id."""
    memory_bytes: int = 0
    """Memory limit (no swap on top); 0 means unlimited."""
    pids_limit: int = 0
    """Maximum number of tasks; 0 means unlimited."""
    nano_cpus: int = 0
    """CPU quota in billionths of a CPU (1e9 = one CPU); 0 means unlimited."""
    cpu_shares: int = 0
    """Relative CPU weight (docker's ``--cpu-shares``, 2..262144; v2: converted to cpu.weight)."""
    blkio_weight: int = 0
    """Relative block I/O weight, 10..1000 (``--blkio-weight``); 0 leaves the default."""
    cap_add: list[str] = field(default_factory=list)
    """Capabilities added to docker's default set (``NET_ADMIN`` or ``CAP_NET_ADMIN``; ``ALL``)."""
    cap_drop: list[str] = field(default_factory=list)
    """Capabilities removed from docker's default set (``ALL`` drops every one)."""
    init: bool = False
    """Run a tiny init as PID 1 that forwards signals to the command and reaps zombies."""
    userns: bool = False
    """Run in a user namespace: root inside is host uid/gid 100000.. (an image is required)."""
    mounts: list[dict[str, Any]] = field(default_factory=list)
    """``{"type": "bind"|"volume"|"tmpfs", "source": ..., "target": ..., "readonly": bool,
    "tmpfs_size": bytes, "tmpfs_mode": int, "volume_nocopy": bool, "volume_subpath": str, "bind_propagation":
    str}`` (see shoal.mountspec; launcher/child/mountopts.py applies the last two); a bind source
    must exist; a volume is created on first use (a new, empty one gets the image's content at its
    target unless ``volume_nocopy``); "" as a volume's source is an anonymous volume named after the id."""
    seccomp: str = ""
    """``""``: shoal's default profile (Docker's policy, see seccomp_default.py); ``"unconfined"``: none;
    otherwise a profile document in Docker's JSON format (``--security-opt seccomp=FILE`` reads FILE)."""
    masked_paths: list[str] = field(default_factory=list)
    """Absolute paths hidden inside the container, besides Docker's /proc and /sys masks: a directory
    shows empty (read-only tmpfs), a file or socket as /dev/null; a missing path is skipped. A caller
    running ``host`` containers lists its own secrets here (the worker: the node's data dir, /etc/shoal)."""
    stop_grace_s: float = 10.0
    """How long ``stop()`` waits after SIGTERM before it SIGKILLs the whole cgroup."""
    labels: dict[str, str] = field(default_factory=dict)
    """Free-form metadata, returned as is in ContainerInfo."""
    read_only: bool = False
    """Mount the container's root filesystem read-only (``--read-only``); mounts and /dev, /proc stay as they are."""
    ulimits: list[dict[str, Any]] = field(default_factory=list)
    """``{"name": "nofile", "soft": 1024, "hard": 2048}`` (docker's ``--ulimit`` names; -1: unlimited)."""
    sysctls: dict[str, str] = field(default_factory=dict)
    """Namespaced kernel parameters only (``net.*``, ``kernel.shm*``/``msg*``/``sem``, ``fs.mqueue.*``)."""
    group_add: list[str] = field(default_factory=list)
    """Supplementary groups (``--group-add``): names from the rootfs' /etc/group, or gids."""
    log_max_size: int = 0
    """Rotate the container's log past this many bytes (docker's json-file ``max-size``); 0: 10 MiB."""
    log_max_files: int = 0
    """How many log files are kept, the current one included (json-file's ``max-file``); 0: 3."""
    stop_signal: str = ""
    """What ``stop()`` sends first (a name such as ``SIGUSR1`` or a number); "" is SIGTERM."""
    netns_path: str = ""
    """A network namespace to join (e.g. ``/run/netns/NAME``, made and wired by the caller, who also
    removes it); "" gives the container a new one with only loopback. Not with ``userns``."""
    publish: list[dict[str, Any]] = field(default_factory=list)
    """Ports published on this host, as ``docker run -p``: ``{"host_port", "container_port", "protocol":
    "tcp"|"udp", "host_ip": ""}`` (see ``shoal.runtime.ports``). The launcher gives the container an
    address on shoal's standalone bridge and forwards each host port to it (nftables, its own table)
    while the container runs. Not with ``netns_path`` or ``userns``."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContainerConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown config fields: {', '.join(sorted(unknown))}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"bad config: {exc}") from None


@dataclass
class ContainerInfo:
    """What the runtime knows about one container."""

    id: str
    image: str
    status: str
    """``created``, ``running`` or ``exited``."""
    pid: int
    """Host pid of the container's PID 1 (0 when not running)."""
    exit_code: int | None
    """Exit status, 128+N for signal N; None while not exited (or if it was lost)."""
    oom_killed: bool
    created_at: float
    started_at: float | None
    finished_at: float | None
    labels: dict[str, str]
    log_path: str
    cgroup: str
    """The container's cgroup path relative to the launcher's own cgroup (``<parent>/<id>``)."""
    command: list[str] = field(default_factory=list)
    """The argv it runs (resolved from the config and the image)."""
    image_id: str = ""
    ports: list[str] = field(default_factory=list)
    """Its published ports while it runs, as docker shows them (``0.0.0.0:8080->80/tcp``)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape (dataclasses.asdict deep-copies every value: ~10x slower, on every reply)."""
        data = {name: getattr(self, name) for name in _INFO_FIELDS}
        data.update(labels=dict(self.labels), command=list(self.command), ports=list(self.ports))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContainerInfo:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


_INFO_FIELDS = tuple(f.name for f in dataclasses.fields(ContainerInfo))


@dataclass
class ContainerStats:
    """Resource usage read from the container's cgroup (``shoal stats``)."""

    cpu_seconds: float
    memory_bytes: int
    memory_peak_bytes: int
    """Highest memory use seen (v1 max_usage_in_bytes, v2 memory.peak; 0 if the kernel lacks it)."""
    memory_limit_bytes: int
    """0 when unlimited."""
    pids: int


@dataclass
class ExecResult:
    """The outcome of ``Runtime.exec``."""

    exit_code: int
    """The command's exit status (128+N for signal N); 126/127 when it could not be exec'd (the
    reason is in ``output``); -1 when ``timeout`` expired and the process was SIGKILLed."""
    output: bytes
    """stdout and stderr combined, interleaved as written; only the last 64 KiB are kept."""
    timed_out: bool = False
