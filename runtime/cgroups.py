"""Per-container cgroups behind one interface, for cgroup v1 (hybrid hosts) and the v2 unified tree.

Each container gets ``<parent>/<id>`` below the launcher's own cgroup (or below the hierarchy root
when the parent is absolute), in every v1 hierarchy the runtime uses or in the v2 tree. The parent
keeps several runtimes on one machine apart. Killing uses the freezer on v1 (freeze, SIGKILL,
thaw: no task can fork while we kill) and ``cgroup.kill`` on v2. Deletion retries ``rmdir``
briefly while the kernel drains exiting tasks.
"""

from __future__ import annotations

import errno
import os
import time
from abc import ABC, abstractmethod

from shoal.runtime import cgroup_limits as cl
from shoal.runtime.cgroupfs import counter as _counter
from shoal.runtime.cgroupfs import device_rules as _device_rules
from shoal.runtime.cgroupfs import kill as _kill
from shoal.runtime.cgroupfs import pids as _pids
from shoal.runtime.cgroupfs import read as _read
from shoal.runtime.cgroupfs import rmdir_retry as _rmdir_retry
from shoal.runtime.cgroupfs import write as _write
from shoal.runtime.errors import ConfigError, ContainerError


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
            _write(path, str(pid))

    def pids(self, cid: str) -> list[int]:
        found: set[int] = set()
        for d in self.dirs(cid):
            found.update(_pids(d))
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
            _rmdir_retry(d, deadline)

    def cleanup_parent(self) -> None:
        """Remove the (empty) parent cgroup(s); silently keeps them while other containers use them."""
        for d in {os.path.dirname(x) for x in self.dirs("x")}:
            try:
                os.rmdir(d)
            except OSError:
                pass


class CgroupsV1(Cgroups):
    """One cgroup per v1 hierarchy (memory, cpu+cpuacct, pids, freezer as the host mounts them)."""

    version = 1

    def __init__(self, mounts: list[cl.CgroupMount], own: dict[str, str], parent: str) -> None:
        super().__init__(parent)
        self.mounts = mounts
        self.own = own

    def _dir(self, mount: cl.CgroupMount, cid: str) -> str:
        ctrl = next(iter(sorted(mount.controllers)))
        return cl.host_path(mount, self.own.get(ctrl, "/"), f"{self.parent}/{cid}")

    def dirs(self, cid: str) -> list[str]:
        return [self._dir(m, cid) for m in self.mounts]

    def self_join_files(self, cid: str) -> list[str]:
        return [os.path.join(d, "tasks") for d in self.dirs(cid) if os.path.isdir(d)]

    def populated(self, cid: str) -> bool:
        first = next((m for m in self.mounts if not m.controllers <= cl.ON_DEMAND_V1), None)
        return bool(_pids(self._dir(first, cid))) if first else bool(self.pids(cid))

    def dir_for(self, controller: str, cid: str) -> str | None:
        for m in self.mounts:
            if controller in m.controllers:
                return self._dir(m, cid)
        return None

    def create(self, cid: str, limits: cl.Limits) -> None:
        writes = cl.v1_writes(limits)
        devices = self.dir_for("devices", cid)
        for ctrl, _, _ in writes:
            if self.dir_for(ctrl, cid) is None:
                raise ConfigError(f"cgroup v1 controller {ctrl!r} is not mounted: cannot set that limit")
        made: list[str] = []
        used = {ctrl for ctrl, _, _ in writes}
        try:
            for m in self.mounts:
                if m.controllers <= cl.ON_DEMAND_V1 and not m.controllers & used:
                    continue  # e.g. blkio: a cgroup there only when a weight is set
                d = self._dir(m, cid)
                if not os.path.isdir(os.path.dirname(d)):
                    os.makedirs(os.path.dirname(d))
                    if d == devices:  # a new parent: give it the rules its children inherit
                        _device_rules(os.path.dirname(d), strict=False)
                os.mkdir(d)
                made.append(d)
            if devices is not None:
                _device_rules(devices, strict=True)
            for ctrl, name, value in writes:
                path = os.path.join(self.dir_for(ctrl, cid) or "", name)
                if name in cl.OPTIONAL_FILES and not os.path.exists(path):
                    continue
                if name == "blkio.weight" and not os.path.exists(path):
                    path = os.path.join(os.path.dirname(path), "blkio.bfq.weight")
                    if not os.path.exists(path):
                        raise ConfigError("this kernel does not support block I/O weight (no blkio.weight)")
                _write(path, value)
        except BaseException:
            for d in reversed(made):
                _rmdir_retry(d, time.monotonic() + 1)
            raise

    def kill_all(self, cid: str) -> None:
        freezer = self.dir_for("freezer", cid)
        if freezer is None or not os.path.isdir(freezer):
            for _ in range(100):
                pids = self.pids(cid)
                if not pids:
                    return
                for pid in pids:
                    _kill(pid)
                time.sleep(0.001)
            return
        state = os.path.join(freezer, "freezer.state")
        _write(state, "FROZEN")
        try:
            deadline = time.monotonic() + 1.0
            while _read(state).strip() != "FROZEN" and time.monotonic() < deadline:
                time.sleep(0.001)
            for pid in self.pids(cid):
                _kill(pid)
        finally:
            _write(state, "THAWED")

    def oom_kills(self, cid: str) -> int:
        memory = self.dir_for("memory", cid)
        if memory is None:
            return 0
        try:
            text = _read(os.path.join(memory, "memory.oom_control"))
        except FileNotFoundError:
            return 0
        return _counter(text, "oom_kill")

    def stats(self, cid: str) -> dict[str, float]:
        def num(ctrl: str, name: str) -> int:
            d = self.dir_for(ctrl, cid)
            try:
                return int(_read(os.path.join(d, name)).split()[0]) if d else 0
            except (FileNotFoundError, ValueError, IndexError):
                return 0

        limit = num("memory", "memory.limit_in_bytes")
        return {
            "cpu_seconds": num("cpuacct", "cpuacct.usage") / 1e9,
            "memory_bytes": num("memory", "memory.usage_in_bytes"),
            "memory_peak_bytes": num("memory", "memory.max_usage_in_bytes"),
            "memory_limit_bytes": 0 if limit >= 1 << 62 else limit,
            "pids": num("pids", "pids.current"),
        }


class CgroupsV2(Cgroups):
    """One cgroup in the unified hierarchy; controllers are enabled down the parents as needed."""

    version = 2

    def __init__(self, mount: cl.CgroupMount, own: str, parent: str) -> None:
        super().__init__(parent)
        self.mount = mount
        self.own = own
        self.base = cl.host_path(mount, own, self.parent)
        # Where enabling controllers starts: the hierarchy root, or the launcher's own cgroup.
        self.top = cl.host_path(mount, own, "/" if self.parent.startswith("/") else "")

    def dirs(self, cid: str) -> list[str]:
        return [os.path.join(self.base, cid)]

    def _enable(self, needed: set[str]) -> None:
        if not needed:
            return
        available = set(_read(os.path.join(self.top, "cgroup.controllers")).split())
        missing = needed - available
        if missing:
            raise ConfigError(
                f"cgroup v2 controller(s) {', '.join(sorted(missing))} not available in {self.top} "
                "(bound to a v1 hierarchy, or not delegated)"
            )
        chain = [self.top]
        rel = os.path.relpath(self.base, self.top)
        for part in [] if rel == "." else rel.split("/"):
            chain.append(os.path.join(chain[-1], part))
        for d in chain:
            os.makedirs(d, exist_ok=True)
            try:
                _write(os.path.join(d, "cgroup.subtree_control"), " ".join(f"+{c}" for c in sorted(needed)))
            except OSError as exc:
                if exc.errno == errno.EBUSY:
                    raise ContainerError(
                        f"cannot enable {sorted(needed)} in {d}: it holds processes (cgroup v2 "
                        "'no internal processes' rule); run the agent in a delegated leaf cgroup "
                        "or use an absolute cgroup_parent"
                    ) from None
                raise

    def create(self, cid: str, limits: cl.Limits) -> None:
        self._enable(cl.v2_controllers(limits))
        d = self.dirs(cid)[0]
        os.makedirs(self.base, exist_ok=True)
        os.mkdir(d)
        try:
            for name, value in cl.v2_writes(limits):
                path = os.path.join(d, name)
                if name in cl.OPTIONAL_FILES and not os.path.exists(path):
                    continue
                _write(path, value)
        except BaseException:
            _rmdir_retry(d, time.monotonic() + 1)
            raise

    def populated(self, cid: str) -> bool:
        try:
            return _counter(_read(os.path.join(self.dirs(cid)[0], "cgroup.events")), "populated") > 0
        except FileNotFoundError:
            return False

    def kill_all(self, cid: str) -> None:
        d = self.dirs(cid)[0]
        kill_file = os.path.join(d, "cgroup.kill")
        if os.path.exists(kill_file):
            _write(kill_file, "1")
        else:  # kernels before 5.14
            for pid in _pids(d):
                _kill(pid)
        deadline = time.monotonic() + 1.0
        while self.populated(cid) and time.monotonic() < deadline:
            time.sleep(0.001)

    def stats(self, cid: str) -> dict[str, float]:
        d = self.dirs(cid)[0]

        def raw(name: str) -> str:
            try:
                return _read(os.path.join(d, name)).strip()
            except FileNotFoundError:
                return ""

        def num(name: str) -> int:
            text = raw(name)
            return int(text) if text.isdigit() else 0

        return {
            "cpu_seconds": _counter(raw("cpu.stat"), "usage_usec") / 1e6,
            "memory_bytes": num("memory.current"),
            "memory_peak_bytes": num("memory.peak"),
            "memory_limit_bytes": num("memory.max"),
            "pids": num("pids.current"),
        }

    def oom_kills(self, cid: str) -> int:
        try:
            return _counter(_read(os.path.join(self.dirs(cid)[0], "memory.events")), "oom_kill")
        except FileNotFoundError:
            return 0


def detect(parent: str) -> Cgroups:
    """The cgroup manager for this host, rooted below the calling process' own cgroup."""
    mounts = cl.parse_mountinfo(_read("/proc/self/mountinfo"))
    own = cl.parse_proc_cgroup(_read("/proc/self/cgroup"))
    version, chosen = cl.choose_layout(mounts)
    if version == 1:
        return CgroupsV1(chosen, own, parent)
    if version == 2:
        return CgroupsV2(chosen[0], own.get("", "/"), parent)
    raise ContainerError("no cgroup filesystem is mounted (neither v1 controllers nor cgroup2)")
