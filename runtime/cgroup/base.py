"""The one interface the launcher uses for a container's cgroup, whatever the host's cgroup version.

Each container gets ``<parent>/<id>`` below the launcher's own cgroup (or below the hierarchy root
when the parent is absolute), in every v1 hierarchy the runtime uses or in the v2 tree. The parent
keeps several runtimes on one machine apart. Killing uses the freezer on v1 (freeze, SIGKILL,
thaw: no task can fork while we kill) and ``cgroup.kill`` on v2 (see v1.py, v2.py). Deletion
retries ``rmdir`` briefly while the kernel drains exiting tasks.
"""

from __future__ import annotations

import errno
import os
import time
from abc import ABC, abstractmethod

from shoal.runtime.cgroup import fs
from shoal.runtime.cgroup import limits as cl
from shoal.runtime.errors import ContainerError


class Cgroups(ABC):
    """The cgroup operations the launcher needs, whatever the host's cgroup version."""

    version: int

    def __init__(self, parent: str) -> None:
        self.parent = parent.rstrip("/") or "/"

    def relpath(self, cid: str) -> str:
        """The container's cgroup as reported in ContainerInfo.cgroup (``<parent>/<id>``)."""
        return f"{self.parent.rstrip('/')}/{cid}"

    @abstractmethod
    def dirs(self, cid: str) -> list[str]:
        """The container's cgroup directories (one per hierarchy)."""

    @abstractmethod
    def create(self, cid: str, limits: cl.Limits) -> None:
        """Make the container's cgroup(s) and write the limits; undo everything on failure."""

    @abstractmethod
    def kill_all(self, cid: str) -> None:
        """SIGKILL every process in the container's cgroup."""

    @abstractmethod
    def stats(self, cid: str) -> dict[str, float]:
        """cpu_seconds, memory_bytes, memory_peak_bytes, memory_limit_bytes (0: none), pids."""

    @abstractmethod
    def oom_kills(self, cid: str) -> int:
        """How many processes the OOM killer killed in this cgroup."""

    def procs_files(self, cid: str) -> list[str]:
        """The ``cgroup.procs`` files a process writes "0" to in order to join (made dirs only)."""
        return [os.path.join(d, "cgroup.procs") for d in self.dirs(cid) if os.path.isdir(d)]

    def self_join_files(self, cid: str) -> list[str]:
        """The files a *single-threaded* process writes "0" to in order to move itself in.

        v1: ``tasks``. Moving only the calling thread lets the kernel skip the global
        threadgroup rwsem (and the RCU grace period its write lock waits for, about 1-3 ms here),
        and for a process with one thread it is the same move. v2 has no such file.
        """
        return self.procs_files(cid)

    def join(self, cid: str, pid: int) -> None:
        for path in self.procs_files(cid):
            fs.write(path, str(pid))

    def pids(self, cid: str) -> list[int]:
        found: set[int] = set()
        for d in self.dirs(cid):
            found.update(fs.pids(d))
        return sorted(found)

    def exists(self, cid: str) -> bool:
        return any(os.path.isdir(d) for d in self.dirs(cid))

    def populated(self, cid: str) -> bool:
        """Whether any process is still in the container's cgroup (one read: every process of
        a container joins all of its hierarchies, the first one first)."""
        return bool(self.pids(cid))

    def delete(self, cid: str, timeout: float = 2.0) -> None:
        """Remove the container's cgroup(s); kills leftovers first. Missing dirs are fine.

        rmdir itself tells whether processes are left (EBUSY), so the common case (an exited
        container) costs one rmdir per hierarchy and no reads.
        """
        deadline = time.monotonic() + timeout
        killed = False
        for d in self.dirs(cid):
            try:
                os.rmdir(d)
                continue
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise ContainerError(f"cannot remove cgroup {d}: {exc.strerror}") from None
            if not killed:
                self.kill_all(cid)
                killed = True
            fs.rmdir_retry(d, deadline)

    def cleanup_parent(self) -> None:
        """Remove the (empty) parent cgroup(s); silently keeps them while other containers use them."""
        for d in {os.path.dirname(x) for x in self.dirs("x")}:
            try:
                os.rmdir(d)
            except OSError:
                pass
