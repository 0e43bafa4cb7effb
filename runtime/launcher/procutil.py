"""Process and mount helpers of the launcher: pidfds, closing inherited fds, reading a pipe to EOF,
reaping, unmounting.

Small system-call wrappers the supervisor uses around each container's fork and teardown.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import time

from shoal.runtime import linux


def pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except OSError:
        return None


def close_fds_except(keep: set[int]) -> None:
    """Close every inherited fd above stdio but ``keep`` (a forked helper's first step)."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def read_until_eof(fd: int, timeout: float) -> bytes | None:
    """Everything written to ``fd`` until EOF; None on timeout."""
    deadline = time.monotonic() + timeout
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        data = os.read(fd, 65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def reap_failed(pid: int) -> None:
    """Collect a child that failed (or hung) before exec."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def unmount_below(directory: str) -> None:
    """Detach any mount left under ``directory`` in the launcher's namespace (normally none)."""
    prefix = directory.rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith(prefix) or p == directory), reverse=True):
        try:
            linux.umount2(point, linux.MNT_DETACH)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOENT):
                raise
