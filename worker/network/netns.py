"""Netlink sockets inside other network namespaces, without forking.

pyroute2's ``AsyncIPRoute(netns=...)`` forks a helper process to open its socket in the namespace
(about 35 ms here, and a gRPC fork warning in the agent). A socket keeps the namespace it was created
in, so instead a short-lived thread enters the namespace with ``setns`` (which is per thread), creates
the socket, and returns to its own namespace; pyroute2 then drives that socket from the event loop
(``AsyncIPRoute(fileno=...)``). The same trick runs a small function (a sysctl write) in a namespace.

``create``/``remove`` make and drop a named namespace the same way (``ip netns add`` / ``del``); ``bind``
gives one a second name (a pooled namespace becomes a task's).

A namespace is named by a path: ``/run/netns/NAME`` (``ip netns``), ``/proc/PID/ns/net`` (a task's
PID 1, see ``of_pid``), or None for the namespace the agent itself runs in.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from pyroute2 import AsyncIPRoute

from shoal.runtime import linux
from shoal.runtime.nsthread import run_in_netns

T = TypeVar("T")


class NetnsError(OSError):
    """A namespace that cannot be entered (gone, or not a network namespace)."""


def of_pid(pid: int) -> str:
    """The network namespace path of process ``pid``."""
    return f"/proc/{pid}/ns/net"


def run_in(path: str | None, fn: Callable[[], T]) -> T:
    """Run ``fn`` on a thread that has entered the namespace at ``path`` (None: here, directly)."""
    if path is None:
        return fn()
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise NetnsError(e.errno, f"cannot open network namespace {path}: {e.strerror}") from None
    try:
        return run_in_netns(target, fn)
    finally:
        os.close(target)


def create(path: str) -> None:
    """A new, empty network namespace kept alive by a bind mount at ``path`` (as ``ip netns add`` does).

    The agent makes a task's namespace this way before the task starts, wires it, and the runtime
    joins it; no process is forked. Refused when ``path`` already exists.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)

    def make() -> None:
        linux.unshare(linux.CLONE_NEWNET)  # this thread only
        linux.mount("/proc/thread-self/ns/net", path, None, linux.MS_BIND)

    try:
        run_in_netns(None, make)
    except BaseException:
        os.unlink(path)
        raise


def bind(src: str, dst: str) -> None:
    """Keep the namespace bound at ``src`` alive at ``dst`` too (a new file; refused when it exists)."""
    fd = os.open(dst, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    try:
        linux.mount(src, dst, None, linux.MS_BIND)
    except BaseException:
        os.unlink(dst)
        raise


def remove(path: str) -> bool:
    """Drop the bind mount at ``path`` and the file (the namespace ends with its last user); False if absent."""
    if not os.path.exists(path):
        return False
    try:
        linux.umount2(path, linux.MNT_DETACH)
    except OSError as e:
        if e.errno != errno.EINVAL:  # EINVAL: not a mount point (a half-made one): just unlink
            raise
    os.unlink(path)
    return True


def route_socket(path: str | None) -> socket.socket:
    """A NETLINK_ROUTE socket that lives in the namespace at ``path``."""
    return run_in(path, lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0))


@asynccontextmanager
async def iproute(path: str | None) -> AsyncIterator[AsyncIPRoute]:
    """An ``AsyncIPRoute`` working inside the namespace at ``path``, closed on exit."""
    sock = route_socket(path)
    ipr = AsyncIPRoute(fileno=sock.detach())
    async with ipr:
        yield ipr


def write_sysctl(path: str | None, key: str, value: str) -> None:
    """Write ``/proc/sys/<key>`` (dots as slashes) as seen from the namespace at ``path``."""
    target = "/proc/sys/" + key.replace(".", "/")

    def write() -> None:
        with open(target, "w") as f:
            f.write(value)

    run_in(path, write)


def read_sysctl(path: str | None, key: str) -> str:
    """Read ``/proc/sys/<key>`` as seen from the namespace at ``path``."""
    target = "/proc/sys/" + key.replace(".", "/")

    def read() -> str:
        with open(target) as f:
            return f.read().strip()

    return run_in(path, read)
