"""What a caller asks the runtime for (ContainerConfig) and what it reports back (ContainerInfo).

Both are plain dataclasses that round-trip through JSON, because they cross the launcher's unix
socket and live in the per-container state file. Validation and the defaults Docker users expect
(PATH, HOSTNAME, HOME, hostname from the id) are pure functions here so they can be unit tested
without root.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from shoal.runtime.errors import ConfigError

ID_RE = re.compile(r"^[a-z0-9_.-]{1,64}$")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$")
ENV_KEY_RE = re.compile(r"^[^=\x00]+$")
MIN_MEMORY_BYTES = 6 * 1024 * 1024  # Docker's minimum; below this a container cannot even exec
MIN_NANO_CPUS = 10_000_000  # 0.01 CPU, so the cfs quota stays >= 1 ms of a 100 ms period

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
    "tmpfs_size": bytes}``; a bind source must exist, a volume is created on first use."""
    stop_grace_s: float = 10.0
    """How long ``stop()`` waits after SIGTERM before it SIGKILLs the whole cgroup."""
    labels: dict[str, str] = field(default_factory=dict)
    """Free-form metadata, returned as is in ContainerInfo."""

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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContainerInfo:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


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


def validate(config: ContainerConfig) -> None:
    """Raise ConfigError naming the first field that is wrong."""
    if not isinstance(config.id, str) or not ID_RE.match(config.id) or config.id in (".", ".."):
        raise ConfigError(f"invalid container id {config.id!r}: use 1-64 of [a-z0-9_.-]")
    if not isinstance(config.image, str) or not config.image:
        raise ConfigError("image is required")
    for name, argv in (("args", config.args), ("entrypoint", config.entrypoint or [])):
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise ConfigError(f"{name} must be a list of strings")
        if any("\x00" in a for a in argv):
            raise ConfigError(f"{name} must not contain NUL bytes")
    if config.args and not config.args[0] and config.entrypoint is None:
        raise ConfigError("args must not start with an empty string")
    for entry in config.env:
        key, sep, _ = entry.partition("=") if isinstance(entry, str) else ("", "", "")
        if not sep or not ENV_KEY_RE.match(key) or "\x00" in entry:
            raise ConfigError(f"invalid env entry {entry!r}: expected KEY=VALUE")
    if config.workdir and not config.workdir.startswith("/"):
        raise ConfigError(f"workdir must be absolute, got {config.workdir!r}")
    if config.hostname and not HOSTNAME_RE.match(config.hostname):
        raise ConfigError(f"invalid hostname {config.hostname!r}")
    if not isinstance(config.user, str) or "\x00" in config.user or config.user.count(":") > 1:
        raise ConfigError(f"invalid user {config.user!r}: use uid, uid:gid, name or name:group")
    _check_int("memory_bytes", config.memory_bytes)
    if 0 < config.memory_bytes < MIN_MEMORY_BYTES:
        raise ConfigError(f"memory_bytes must be 0 or at least {MIN_MEMORY_BYTES} (6 MiB)")
    _check_int("pids_limit", config.pids_limit)
    _check_int("nano_cpus", config.nano_cpus)
    if 0 < config.nano_cpus < MIN_NANO_CPUS:
        raise ConfigError(f"nano_cpus must be 0 or at least {MIN_NANO_CPUS} (0.01 CPU)")
    _check_int("cpu_shares", config.cpu_shares)
    if config.cpu_shares and not 2 <= config.cpu_shares <= 262144:
        raise ConfigError(f"cpu_shares must be 0 or 2..262144, got {config.cpu_shares}")
    _check_int("blkio_weight", config.blkio_weight)
    if config.blkio_weight and not 10 <= config.blkio_weight <= 1000:
        raise ConfigError(f"blkio_weight must be 0 or 10..1000, got {config.blkio_weight}")
    for name in (*config.cap_add, *config.cap_drop):
        if not isinstance(name, str) or not name:
            raise ConfigError(f"invalid capability {name!r}")
    if not isinstance(config.mounts, list) or not all(isinstance(m, dict) for m in config.mounts):
        raise ConfigError("mounts must be a list of objects")
    if config.userns and config.image == "host":
        raise ConfigError("userns needs an image: the host image cannot be remapped")
    grace = config.stop_grace_s
    if not isinstance(grace, int | float) or not math.isfinite(grace) or grace < 0:
        raise ConfigError(f"stop_grace_s must be a finite number >= 0, got {grace!r}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in config.labels.items()):
        raise ConfigError("labels must map strings to strings")


def _check_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")


def effective_hostname(config: ContainerConfig) -> str:
    """The hostname inside the container: the configured one, or the id's first 12 characters."""
    return config.hostname or config.id[:12]


def effective_env(config: ContainerConfig, home: str, env: list[str] | None = None) -> list[str]:
    """The environment the process gets: ``env`` (default: the config's) plus Docker's defaults."""
    base = config.env if env is None else env
    keys = {e.partition("=")[0] for e in base}
    env: list[str] = []
    if "PATH" not in keys:
        env.append(f"PATH={DEFAULT_PATH}")
    if "HOSTNAME" not in keys:
        env.append(f"HOSTNAME={effective_hostname(config)}")
    env.extend(base)
    if "HOME" not in keys:
        env.append(f"HOME={home}")
    return env
