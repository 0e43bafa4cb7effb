"""The cgroup filesystem primitives under v1.py and v2.py: small file writes and reads, rmdir with retry.

Kept apart so the version modules hold only the per-version logic. ``write`` is one ``write(2)`` per call,
as cgroupfs wants (each write is one command to the kernel).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time

from shoal.retry import Backoff, retry_sync
from shoal.runtime.cgroup import limits as cl
from shoal.runtime.errors import ContainerError


def write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def pids(directory: str) -> list[int]:
    try:
        return [int(p) for p in read(os.path.join(directory, "cgroup.procs")).split()]
    except FileNotFoundError:
        return []


def rmdir_retry(directory: str, deadline: float) -> None:
    """Remove a cgroup directory; the kernel calls it busy (EBUSY) for a moment after its last task exits."""

    def attempt() -> None:
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(directory)

    try:
        retry_sync(
            attempt,
            Backoff(0.001, 0.05),
            retry_on=OSError,
            retryable=_busy,
            timeout=deadline - time.monotonic(),
        )
    except OSError as exc:
        raise ContainerError(f"cannot remove cgroup {directory}: {exc.strerror}") from None


def _busy(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.EBUSY


def device_rules(directory: str, strict: bool) -> None:
    """Docker's device allow-list on a v1 devices cgroup, unless it already has it.

    A new cgroup copies its parent's list, so once the runtime's parent carries the rules a
    container's cgroup needs one read instead of 13 writes (the kernel takes one rule per write).
    The parent is set only when the runtime makes it (``a`` rules are refused once a cgroup has
    children); ``strict`` raises on failure, otherwise a failure is left for the child's check.
    """
    try:
        if cl.device_list_is_default(read(os.path.join(directory, "devices.list"))):
            return
        for _, name, value in cl.v1_device_writes():
            write(os.path.join(directory, name), value)
    except OSError:
        if strict:
            raise


def counter(text: str, key: str) -> int:
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            return int(parts[1])
    return 0


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
