"""A container config validated once: ``validate`` turns a ContainerConfig into the ContainerSpec.

The client calls ``validate`` at its edge (``Runtime.create``), before anything reaches the
launcher, and sends the ContainerSpec it returns (one JSON document). Everything that can be
decided without the image store is decided here, once: the id, argv and env shapes, resource
limits (against this host's CPU count), the capability mask from ``cap_add``/``cap_drop``, the
normalized mounts and the effective hostname. The launcher rebuilds the spec from the wire with
``from_dict`` (structure only, no second validation: its socket is mode 0600 and only root reaches
it) and resolves against the image what only it can (image, user, volumes; see launcher/resolve.py).
Pure functions on plain data, unit tested without root.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from shoal import ctropts
from shoal.runtime import caps, mounts, ports, seccompcheck
from shoal.runtime.cgroup.limits import Limits
from shoal.runtime.config import ContainerConfig
from shoal.runtime.errors import ConfigError

ID_RE = re.compile(r"^[a-z0-9_.-]{1,64}$")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$")
ENV_KEY_RE = re.compile(r"^[^=\x00]+$")
MIN_MEMORY_BYTES = 6 * 1024 * 1024  # Docker's minimum; below this a container cannot even exec
MIN_NANO_CPUS = 10_000_000  # 0.01 CPU, so the cfs quota stays >= 1 ms of a 100 ms period
HOST_IMAGE = "host"


@dataclass(frozen=True)
class ContainerSpec:
    """A validated container config: the one form the launcher receives and persists."""

    id: str
    image: str
    args: list[str]
    entrypoint: list[str] | None
    env: list[str]
    """The caller's ``KEY=VALUE`` entries (the image's Env and Docker's defaults are added at create)."""
    workdir: str
    user: str
    hostname: str
    """The effective hostname: the configured one, or the id's first 12 characters."""
    limits: Limits
    caps: int
    """Capability mask: Docker's default set with ``cap_add``/``cap_drop`` applied."""
    mounts: list[dict[str, Any]] = field(default_factory=list)
    """Normalized mounts (``mounts.validate_all``); volume names are still names here."""
    init: bool = False
    userns: bool = False
    stop_grace_s: float = 10.0
    labels: dict[str, str] = field(default_factory=dict)
    netns_path: str = ""
    """A network namespace to join instead of a new one ("" for a new one)."""
    publish: list[dict[str, Any]] = field(default_factory=list)
    """Normalized published ports (``ports.validate``); the launcher wires them (launcher/hostnet.py)."""
    seccomp: str = ""
    """"" (default profile), "unconfined" or a Docker-format profile document (checked by ``validate``)."""
    masked_paths: list[str] = field(default_factory=list)
    """Normalized absolute paths covered inside the container (see ContainerConfig.masked_paths)."""
    read_only: bool = False
    ulimits: list[list[Any]] = field(default_factory=list)
    """``[name, soft, hard]`` entries, checked (shoal.ctropts)."""
    sysctls: dict[str, str] = field(default_factory=dict)
    """Namespaced sysctls only, checked (shoal.ctropts)."""
    group_add: list[str] = field(default_factory=list)
    stop_signal: int = 15
    """The signal ``stop()`` sends first (SIGTERM unless the config names another)."""
    log_max_size: int = 0
    log_max_files: int = 0
    """The log's rotation (0: the log shim's defaults, shoal.runtime.logs)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape. Shallow (lists and dicts are the spec's own): serialize it, do not keep it.

        dataclasses.asdict deep-copies every value, ~20x slower; this is on every create.
        """
        data = {name: getattr(self, name) for name in _SPEC_FIELDS}
        data["limits"] = {name: getattr(self.limits, name) for name in _LIMIT_FIELDS}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContainerSpec:
        """Rebuild a spec that ``validate`` made (structure only: no rule is checked again)."""
        try:
            return cls(**{**data, "limits": Limits(**data["limits"])})
        except (TypeError, KeyError) as exc:
            raise ConfigError(f"malformed container spec: {exc}") from None


MAX_LOG_FILES = 100
_SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(ContainerSpec))
_LIMIT_FIELDS = tuple(f.name for f in dataclasses.fields(Limits))


def validate(config: ContainerConfig, ncpu: int | None = None) -> ContainerSpec:
    """The ContainerSpec of ``config``; ConfigError naming the first field that is wrong.

    ``ncpu`` (default: this host's CPU count) bounds ``nano_cpus``.
    """
    _check_shape(config)
    _check_resources(config, ncpu or os.cpu_count() or 1)
    for name in (*config.cap_add, *config.cap_drop):
        if not isinstance(name, str) or not name:
            raise ConfigError(f"invalid capability {name!r}")
    if not isinstance(config.mounts, list) or not all(isinstance(m, dict) for m in config.mounts):
        raise ConfigError("mounts must be a list of objects")
    if config.userns and config.image == HOST_IMAGE:
        raise ConfigError("userns needs an image: the host image cannot be remapped")
    if config.userns and any(m.get("bind_propagation") in ("shared", "rshared", "slave", "rslave") for m in config.mounts):
        raise ConfigError("bind-propagation shared or slave cannot be used with userns: its mounts are private")
    grace = config.stop_grace_s
    if not isinstance(grace, int | float) or not math.isfinite(grace) or grace < 0:
        raise ConfigError(f"stop_grace_s must be a finite number >= 0, got {grace!r}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in config.labels.items()):
        raise ConfigError("labels must map strings to strings")
    _check_netns(config)
    limits = Limits(
        config.memory_bytes, config.pids_limit, config.nano_cpus, config.cpu_shares, config.blkio_weight
    )
    return ContainerSpec(
        id=config.id,
        image=config.image,
        args=list(config.args),
        entrypoint=None if config.entrypoint is None else list(config.entrypoint),
        env=list(config.env),
        workdir=config.workdir,
        user=config.user,
        hostname=config.hostname or config.id[:12],
        limits=limits,
        caps=caps.adjust(config.cap_add, config.cap_drop),
        mounts=_mounts(config.mounts),
        init=bool(config.init),
        userns=bool(config.userns),
        stop_grace_s=float(grace),
        labels=dict(config.labels),
        netns_path=config.netns_path,
        publish=ports.validate(config.publish),
        masked_paths=_masked_paths(config.masked_paths),
        seccomp=seccompcheck.check(config.seccomp) if isinstance(config.seccomp, str) else _bad_seccomp(),
        read_only=bool(config.read_only),
        **_process_options(config),
        **_log_options(config),
    )


def _log_options(config: ContainerConfig) -> dict[str, int]:
    """The log's rotation: sizes in bytes >= 0 and at most MAX_LOG_FILES files (0: the defaults)."""
    size, files = config.log_max_size, config.log_max_files
    for name, value, top in (("log_max_size", size, 1 << 50), ("log_max_files", files, MAX_LOG_FILES)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            raise ConfigError(f"{name} must be a whole number from 0 to {top}, got {value!r}")
    return {"log_max_size": size, "log_max_files": files}


def _process_options(config: ContainerConfig) -> dict[str, Any]:
    """ulimits, sysctls, group_add and stop_signal, checked with the core's rules (shoal.ctropts)."""
    try:
        ulimits = [[str(u["name"]), int(u["soft"]), int(u["hard"])] for u in config.ulimits]
        ctropts.check_ulimits([(n, s, h) for n, s, h in ulimits])
        if not isinstance(config.sysctls, dict):
            raise ValueError("sysctls must map names to values")
        for key, value in config.sysctls.items():
            ctropts.check_sysctl(str(key), str(value))
        groups = [str(g) for g in config.group_add]
        if any(not g or ":" in g or "\x00" in g for g in groups):
            raise ValueError(f"invalid group in {groups!r}")
        stop_signal = ctropts.signal_number(config.stop_signal) if config.stop_signal else 15
    except (TypeError, KeyError) as exc:
        raise ConfigError(f"invalid ulimits: {exc}") from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return {"ulimits": ulimits, "sysctls": dict(config.sysctls), "group_add": groups, "stop_signal": stop_signal}


def _check_netns(config: ContainerConfig) -> None:
    """``netns_path``: absolute, and not with ``userns`` (sysfs needs a network namespace the user namespace owns)."""
    path = config.netns_path
    if not isinstance(path, str) or "\x00" in path or (path and not path.startswith("/")):
        raise ConfigError(f"netns_path must be an absolute path, got {path!r}")
    if path and config.userns:
        raise ConfigError("netns_path cannot be used with userns: a user namespace cannot join a network "
                          "namespace it does not own")
    if config.publish and (path or config.userns):
        raise ConfigError("publish cannot be used with netns_path or userns: the launcher wires the "
                          "container's network namespace itself")


def _check_shape(config: ContainerConfig) -> None:
    """The id, image, argv, env, workdir, hostname and user fields."""
    if not isinstance(config.id, str) or not ID_RE.fullmatch(config.id) or config.id in (".", ".."):
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
        if not sep or not ENV_KEY_RE.fullmatch(key) or "\x00" in entry:
            raise ConfigError(f"invalid env entry {entry!r}: expected KEY=VALUE")
    if config.workdir and not config.workdir.startswith("/"):
        raise ConfigError(f"workdir must be absolute, got {config.workdir!r}")
    if config.hostname and not HOSTNAME_RE.fullmatch(config.hostname):
        raise ConfigError(f"invalid hostname {config.hostname!r}")
    if not isinstance(config.user, str) or "\x00" in config.user or config.user.count(":") > 1:
        raise ConfigError(f"invalid user {config.user!r}: use uid, uid:gid, name or name:group")


def _check_resources(config: ContainerConfig, ncpu: int) -> None:
    """Memory, pids, CPU quota and shares, block I/O weight."""
    _check_int("memory_bytes", config.memory_bytes)
    if 0 < config.memory_bytes < MIN_MEMORY_BYTES:
        raise ConfigError(f"memory_bytes must be 0 or at least {MIN_MEMORY_BYTES} (6 MiB)")
    _check_int("pids_limit", config.pids_limit)
    _check_int("nano_cpus", config.nano_cpus)
    if 0 < config.nano_cpus < MIN_NANO_CPUS:
        raise ConfigError(f"nano_cpus must be 0 or at least {MIN_NANO_CPUS} (0.01 CPU)")
    if config.nano_cpus > ncpu * 1_000_000_000:
        raise ConfigError(
            f"range of CPUs is from 0.01 to {ncpu:.2f}, as there are only {ncpu} CPUs available"
        )
    _check_int("cpu_shares", config.cpu_shares)
    if config.cpu_shares and not 2 <= config.cpu_shares <= 262144:
        raise ConfigError(f"cpu_shares must be 0 or 2..262144, got {config.cpu_shares}")
    _check_int("blkio_weight", config.blkio_weight)
    if config.blkio_weight and not 10 <= config.blkio_weight <= 1000:
        raise ConfigError(f"blkio_weight must be 0 or 10..1000, got {config.blkio_weight}")


def _bad_seccomp() -> str:
    raise ConfigError('seccomp must be "", "unconfined" or a profile document (JSON text)')


def _masked_paths(given: object) -> list[str]:
    if not isinstance(given, list):
        raise ConfigError("masked_paths must be a list of absolute paths")
    paths = []
    for path in given:
        if not isinstance(path, str) or not path.startswith("/") or "\x00" in path:
            raise ConfigError(f"masked_paths: {path!r} is not an absolute path")
        normal = os.path.normpath(path)
        if normal == "/":
            raise ConfigError("masked_paths: / cannot be masked")
        paths.append(normal)
    return paths


def _mounts(given: list[dict[str, Any]]) -> list[dict[str, Any]]:
    try:
        return mounts.validate_all(given)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid mount: {exc}") from None


def _check_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")


def effective_env(env: list[str], hostname: str, home: str) -> list[str]:
    """The environment a container's process gets: ``env`` plus Docker's PATH, HOSTNAME, HOME defaults."""
    keys = {e.partition("=")[0] for e in env}
    full: list[str] = []
    if "PATH" not in keys:
        full.append(f"PATH={DEFAULT_PATH}")
    if "HOSTNAME" not in keys:
        full.append(f"HOSTNAME={hostname}")
    full.extend(env)
    if "HOME" not in keys:
        full.append(f"HOME={home}")
    return full
