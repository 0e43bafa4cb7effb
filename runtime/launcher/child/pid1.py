"""What the container's PID 1 does between the launcher's fork() and execve().

The launcher has already put the fork into a new pid namespace; this code joins the cgroup, makes
the remaining namespaces (or joins the network namespace its caller made and wired: ``netns_path``),
builds the root filesystem, sets the hostname, brings ``lo`` up, points stdout and stderr at the log
shim's pipes, marks every other fd close-on-exec (CVE-2024-21626), resets the signal dispositions
CPython changed, then takes the process spec's identity (Docker's capability set, no_new_privs) and
execs: the steps it shares with ``exec`` are in process.py.

Any failure is written as one line of text to the close-on-exec pipe the launcher reads; a clean
EOF there means execve succeeded. This function never returns: it execs or ``_exit``s, so no
launcher state (selectors, sockets, atexit hooks) runs in the child.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
from dataclasses import dataclass, field
from typing import NoReturn

from shoal.runtime import linux, seccomp
from shoal.runtime.files import ContainerFile
from shoal.runtime.launcher import trace
from shoal.runtime.launcher.child import init, process, rootfs
from shoal.runtime.launcher.child.process import ProcessSpec

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
CHILD_NAMESPACES = (
    linux.CLONE_NEWNS | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC | linux.CLONE_NEWNET | linux.CLONE_NEWCGROUP
)
"""A private cgroup namespace too (docker's default on cgroup v2): made after joining the container's
cgroup, so that cgroup is the root of the container's view (/proc/self/cgroup reads ``0::/``)."""
EXIT_SETUP_FAILED = 127


@dataclass(frozen=True)
class ChildSpec:
    """Everything PID 1 needs, computed by the launcher before fork (no lookups after pivot)."""

    process: ProcessSpec
    hostname: str
    rootfs: str
    hidden: list[str]
    """Host directories covered with an empty tmpfs in a host-image container (the state dir)."""
    lowerdirs: list[str] = field(default_factory=list)
    """Image layers, top first; empty for the host image."""
    upper: str = ""
    work: str = ""
    mounts: list[dict] = field(default_factory=list)
    init: bool = False
    userns: bool = False
    api_dirs: bool = False
    """The image has /proc, /dev and /sys as directories (checked by the launcher in the layers)."""
    masked: list[str] = field(default_factory=list)
    """Paths covered after pivot_root (the caller's masked_paths), besides Docker's /proc masks."""
    prepared: bool = False
    """Set by the userns shim: cgroup joined and overlay mounted already (see userns)."""
    netns_path: str = ""
    """A network namespace to join instead of making a new one (the caller wired it)."""
    read_only: bool = False
    """Remount the image's root read-only after everything is mounted on it (``--read-only``)."""
    sysctls: dict[str, str] = field(default_factory=dict)
    """Namespaced sysctls (checked by the client), written once the namespaces are the container's."""
    files: list[ContainerFile] = field(default_factory=list, repr=False)
    """Start-time files (secrets, configs), placed in a tmpfs of the container's own (see child/files)."""
    files_staging: str = ""
    """An empty directory where that tmpfs is mounted while the files are placed."""


def _lo_up() -> None:
    """Loopback up, unless it is already (a namespace the caller wired: setting the flags takes the kernel's
    RTNL lock even when nothing changes, and under load that wait was a good part of a start)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
        if not flags & IFF_UP:
            fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))


def write_sysctls(sysctls: dict[str, str]) -> None:
    """Write each sysctl through /proc/sys: net.* and the IPC ones apply to the calling process's own
    (new) network and IPC namespaces, so nothing of the host's changes. Keys were checked by the client
    to be dot-separated words (no ``/``, no ``..``)."""
    for key, value in sysctls.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise process.SetupError(f"sysctl {key}: not known to this kernel") from None
        try:
            os.write(fd, value.encode())
        except OSError as exc:
            raise process.SetupError(f"sysctl {key}={value}: {exc.strerror}") from None
        finally:
            os.close(fd)


def _join_netns(path: str) -> None:
    """``setns`` into the network namespace at ``path`` (before the root changes: it is a host path)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        linux.setns(fd, linux.CLONE_NEWNET)
    finally:
        os.close(fd)


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
        process.reset_signals()
        trace.mark("signals")
        stage = "join cgroup"
        process.join_cgroup(spec.process.cgroup_procs)
        trace.mark("cgroup_join")
        stage = "unshare namespaces"
        if spec.netns_path:
            linux.unshare(CHILD_NAMESPACES & ~linux.CLONE_NEWNET)
            stage = "join network namespace"
            _join_netns(spec.netns_path)
        else:
            linux.unshare(CHILD_NAMESPACES)
        trace.mark("unshare")
        os.setsid()
        stage = "sysctl"
        write_sysctls(spec.sysctls)
        stage = "rootfs"
        _root(spec)
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
        process.enter(spec.process)
        trace.mark("caps")
        stage = "chdir"
        try:
            os.chdir(spec.process.workdir)
        except OSError as exc:
            msg = f'chdir to cwd ("{spec.process.workdir}") set in config: {exc.strerror}'
            raise process.SetupError(msg) from None
        stage = "exec"
        path, env = process.executable(spec.process)
        trace.mark("find_exec")
        stage = "seccomp"
        seccomp.apply(spec.process.seccomp)  # last: the init (if any) and the command are both filtered
        trace.mark("seccomp")
        stage = "exec"
        if spec.init:
            init.run(path, spec.process.args, env, exec_w)  # returns in the forked command only
        trace.end()
        process.execve(path, spec.process, env)
    except BaseException as exc:  # noqa: BLE001 - everything must reach the launcher as text
        try:
            process.report(exec_w, stage, exc)
        finally:
            os._exit(EXIT_SETUP_FAILED)


def _root(spec: ChildSpec) -> None:
    """The container's root filesystem, pivoted into (see rootfs, userns)."""
    if spec.prepared:
        from shoal.runtime.launcher.child import userns  # imported by the launcher already: no file access

        userns.setup_prepared_root(spec.rootfs, spec.masked)
    elif spec.lowerdirs:
        rootfs.setup_image(
            spec.rootfs, spec.lowerdirs, spec.upper, spec.work, spec.mounts, spec.api_dirs, spec.masked,
            spec.read_only,
            files=spec.files, staging=spec.files_staging, workdir=spec.process.workdir,
        )
    else:
        rootfs.setup_host_image(spec.rootfs, spec.hidden, spec.mounts, spec.masked, files=spec.files, staging=spec.files_staging)
