"""How a process inside a container is set up, shared by the container's PID 1 and by ``exec``.

``ProcessSpec`` is the one description of such a process (argv, env, cwd, identity, capabilities,
cgroup); the steps here (join the cgroup, take the identity, find and exec the command, report a
failure as one line of text) are the ones both paths run after their own namespace setup.

The order of the identity calls matters (findings, pitfall 12): the bounding set is dropped first,
while the process still has CAP_SETPCAP; then the ambient set is cleared; then either ``capset``
(root) or the switch to a non-root uid, which empties the permitted and effective sets.
``no_new_privs`` makes setuid binaries and file capabilities unable to regain anything after exec.
"""

from __future__ import annotations

import os
import resource
import signal
from dataclasses import dataclass, field
from typing import NoReturn

from shoal.runtime import linux


def last_cap() -> int:
    """The highest capability number the running kernel knows."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return 40


def drop_bounding(keep: int, last: int) -> None:
    """Remove every capability not in ``keep`` from the bounding set (needs CAP_SETPCAP)."""
    for cap in range(last + 1):
        if not keep & (1 << cap):
            try:
                linux.prctl(linux.PR_CAPBSET_DROP, cap)
            except OSError as exc:
                if exc.errno != 22:  # EINVAL: the kernel does not know this capability
                    raise


def enter_identity(uid: int, gid: int, groups: tuple[int, ...], keep: int, last: int) -> None:
    """Drop to ``keep`` and become uid/gid; call last before exec. Sets no_new_privs."""
    drop_bounding(keep, last)
    linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL)
    linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    os.setgroups(list(groups))
    os.setresgid(gid, gid, gid)
    if uid == 0:
        linux.capset(keep, keep, 0)  # empty inheritable set, as Docker since CVE-2022-24769
    else:
        # Leaving uid 0 clears the permitted and effective sets (no PR_SET_KEEPCAPS), as Docker
        # does for a non-root user: the bounding set stays at ``keep``.
        os.setresuid(uid, uid, uid)


@dataclass(frozen=True)
class ProcessSpec:
    """How to set up one process in a container, computed by the launcher before it forks.

    The container's PID 1 (pid1.ChildSpec) and every ``exec`` (exec.ExecSpec) carry one; nothing
    in it needs a lookup after the fork (after pivot_root the host's files are gone).
    """

    args: list[str]
    env: list[str]
    """``KEY=VALUE`` entries, complete (defaults included)."""
    workdir: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    caps: int
    """The capability mask to keep (bounding, and effective/permitted for root)."""
    last_cap: int
    """The highest capability the kernel knows (cap_last_cap), read once by the launcher."""
    cgroup_procs: list[str] = field(default_factory=list)
    """The files the process writes "0" to in order to join the container's cgroup."""
    seccomp: bytes = b""
    """The compiled seccomp filter (runtime/seccomp.py), installed last before exec; b"": none."""
    rlimits: tuple[tuple[int, int, int], ...] = ()
    """``(resource, soft, hard)`` set before the identity is taken (RLIM_INFINITY for -1)."""


class SetupError(Exception):
    """A failed step, already phrased for the user."""


def describe(stage: str, exc: BaseException) -> str:
    """One line for the user: what failed at which stage."""
    if isinstance(exc, SetupError):
        return str(exc)
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc)
        if exc.filename and str(exc.filename) not in text:
            text = f"{text}: {exc.filename}"
        return f"{stage}: {text}"
    return f"{stage}: {type(exc).__name__}: {exc}"


def report(fd: int, stage: str, exc: BaseException) -> None:
    """Write the failure to ``fd`` (the pipe the launcher or the exec helper reads)."""
    os.write(fd, describe(stage, exc).encode("utf-8", "replace")[:4000])


def reset_signals() -> None:
    """Default disposition for every signal and an empty mask, as a fresh process would have.

    ``getsignal`` knows each signal's disposition (CPython reads them all at start and tracks its
    own changes), so only the few that differ are reset: one sigaction each instead of ~64.
    """
    signal.set_wakeup_fd(-1)
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            if signal.getsignal(sig) is not signal.SIG_DFL:
                signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def join_cgroup(procs_files: list[str]) -> None:
    """Move the calling process into the cgroup (one write of "0" per hierarchy)."""
    for procs in procs_files:
        fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def env_dict(env: list[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for entry in env:
        key, _, value = entry.partition("=")
        result[key] = value
    return result


def find_executable(arg0: str, path: str) -> str:
    """Resolve ``arg0`` like execvp, with Docker's error wording."""
    if "/" in arg0:
        return arg0
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", arg0)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise SetupError(f'exec: "{arg0}": executable file not found in $PATH')


def enter(spec: ProcessSpec) -> None:
    """Take the spec's resource limits, then its identity: capabilities, no_new_privs, groups, gid and uid."""
    for res, soft, hard in spec.rlimits:
        try:
            resource.setrlimit(res, (soft, hard))
        except (OSError, ValueError) as exc:
            raise SetupError(f"setrlimit {res}: {exc}") from None
    enter_identity(spec.uid, spec.gid, spec.groups, spec.caps, spec.last_cap)


def executable(spec: ProcessSpec) -> tuple[str, dict[str, str]]:
    """The path ``args[0]`` resolves to on the spec's PATH, and the environment as a dict."""
    env = env_dict(spec.env)
    return find_executable(spec.args[0], env.get("PATH", "")), env


def execve(path: str, spec: ProcessSpec, env: dict[str, str]) -> NoReturn:
    """Replace the process; a failure is a SetupError with Docker's wording."""
    try:
        os.execve(path, spec.args, env)
    except OSError as exc:
        raise SetupError(f'exec: "{path}": {exc.strerror}') from None
