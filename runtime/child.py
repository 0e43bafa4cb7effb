"""What the container's PID 1 does between the launcher's fork() and execve().

The launcher has already put the fork into a new pid namespace; this code joins the cgroup, makes
the remaining namespaces, builds the root filesystem, sets the hostname, brings ``lo`` up, points
stdout and stderr at the log shim's pipes, marks every other fd close-on-exec (CVE-2024-21626), resets the signal
dispositions CPython changed, drops to Docker's capability set with no_new_privs, and execs.

Any failure is written as one line of text to the close-on-exec pipe the launcher reads; a clean
EOF there means execve succeeded. This function never returns: it execs or ``_exit``s, so no
launcher state (selectors, sockets, atexit hooks) runs in the child.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import struct
from dataclasses import dataclass, field
from typing import NoReturn

from shoal.runtime import caps, init, linux, rootfs, trace

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
CHILD_NAMESPACES = linux.CLONE_NEWNS | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC | linux.CLONE_NEWNET
EXIT_SETUP_FAILED = 127


@dataclass(frozen=True)
class ChildSpec:
    """Everything the child needs, computed by the launcher before fork (no lookups after pivot)."""

    args: list[str]
    env: list[str]
    workdir: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    hostname: str
    rootfs: str
    hidden: list[str]
    cgroup_procs: list[str]
    caps: int
    last_cap: int
    lowerdirs: list[str] = field(default_factory=list)
    """Image layers, top first; empty for the host image."""
    upper: str = ""
    work: str = ""
    mounts: list[dict] = field(default_factory=list)
    init: bool = False
    userns: bool = False
    api_dirs: bool = False
    """The image has /proc, /dev and /sys as directories (checked by the launcher in the layers)."""
    prepared: bool = False
    """Set by the userns shim: cgroup joined and overlay mounted already (see userns)."""


class SetupError(Exception):
    """A failed step, already phrased for the user."""


def _describe(stage: str, exc: BaseException) -> str:
    if isinstance(exc, SetupError):
        return str(exc)
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc)
        if exc.filename and str(exc.filename) not in text:
            text = f"{text}: {exc.filename}"
        return f"{stage}: {text}"
    return f"{stage}: {type(exc).__name__}: {exc}"


def _lo_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))


def _reset_signals() -> None:
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


def _env_dict(env: list[str]) -> dict[str, str]:
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


def _stdio(out_w: int, err_w: int) -> None:
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    for fd in {null, out_w, err_w}:
        if fd > 2:
            os.close(fd)


def run(spec: ChildSpec, exec_w: int, out_w: int, err_w: int) -> NoReturn:
    """Become the container's PID 1 and exec its command; report failures on ``exec_w``."""
    stage = "init"
    try:
        _reset_signals()
        trace.mark("signals")
        stage = "join cgroup"
        for procs in spec.cgroup_procs:
            fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        trace.mark("cgroup_join")
        stage = "unshare namespaces"
        linux.unshare(CHILD_NAMESPACES)
        trace.mark("unshare")
        os.setsid()
        stage = "rootfs"
        if spec.prepared:
            from shoal.runtime import userns  # imported by the launcher already: no file access here

            userns.setup_prepared_root(spec.rootfs)
        elif spec.lowerdirs:
            rootfs.setup_image(spec.rootfs, spec.lowerdirs, spec.upper, spec.work, spec.mounts, spec.api_dirs)
        else:
            rootfs.setup_host_image(spec.rootfs, spec.hidden, spec.mounts)
        stage = "sethostname"
        socket.sethostname(spec.hostname)
        stage = "loopback up"
        _lo_up()
        trace.mark("host_lo")
        stage = "stdio"
        _stdio(out_w, err_w)
        linux.close_range_cloexec(3)
        trace.mark("stdio")
        stage = "drop privileges"
        caps.enter_identity(spec.uid, spec.gid, spec.groups, spec.caps, spec.last_cap)
        trace.mark("caps")
        stage = "chdir"
        try:
            os.chdir(spec.workdir)
        except OSError as exc:
            raise SetupError(f'chdir to cwd ("{spec.workdir}") set in config: {exc.strerror}') from None
        stage = "exec"
        env = _env_dict(spec.env)
        path = find_executable(spec.args[0], env.get("PATH", ""))
        if spec.init:
            init.run(path, spec.args, env, exec_w)  # returns in the forked command only
        trace.mark("find_exec")
        trace.end()
        try:
            os.execve(path, spec.args, env)
        except OSError as exc:
            raise SetupError(f'exec: "{path}": {exc.strerror}') from None
    except BaseException as exc:  # noqa: BLE001 - everything must reach the launcher as text
        try:
            os.write(exec_w, _describe(stage, exc).encode("utf-8", "replace")[:4000])
        finally:
            os._exit(EXIT_SETUP_FAILED)
    os._exit(EXIT_SETUP_FAILED)  # not reached: execve does not return
