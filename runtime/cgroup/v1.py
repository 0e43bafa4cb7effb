"""cgroup v1 (this machine's hybrid layout): one cgroup per hierarchy the container uses.

Memory, cpu+cpuacct, pids, freezer and devices as the host mounts them, blkio only when a weight is
set. Limits are written in the order ``limits.v1_writes`` gives; killing freezes the cgroup first
(freeze, SIGKILL, thaw: no task can fork while we kill), since v1 has no ``cgroup.kill``.
"""

from __future__ import annotations

import os
import time

from shoal.runtime.cgroup import fs
from shoal.runtime.cgroup import limits as cl
from shoal.runtime.cgroup.base import Cgroups
from shoal.runtime.cgroup.hierarchy import CgroupMount, host_path
from shoal.runtime.errors import ConfigError


class CgroupsV1(Cgroups):
    """One cgroup per v1 hierarchy (memory, cpu+cpuacct, pids, freezer as the host mounts them)."""

    version = 1

    def __init__(self, mounts: list[CgroupMount], own: dict[str, str], parent: str) -> None:
        super().__init__(parent)
        self.mounts = mounts
        self.own = own

    def _dir(self, mount: CgroupMount, cid: str) -> str:
        ctrl = next(iter(sorted(mount.controllers)))
        return host_path(mount, self.own.get(ctrl, "/"), f"{self.parent}/{cid}")

    def dirs(self, cid: str) -> list[str]:
        return [self._dir(m, cid) for m in self.mounts]

    def self_join_files(self, cid: str) -> list[str]:
        return [os.path.join(d, "tasks") for d in self.dirs(cid) if os.path.isdir(d)]

    def populated(self, cid: str) -> bool:
        first = next((m for m in self.mounts if not m.controllers <= cl.ON_DEMAND_V1), None)
        return bool(fs.pids(self._dir(first, cid))) if first else bool(self.pids(cid))

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
                        fs.device_rules(os.path.dirname(d), strict=False)
                os.mkdir(d)
                made.append(d)
            if devices is not None:
                fs.device_rules(devices, strict=True)
            for ctrl, name, value in writes:
                path = os.path.join(self.dir_for(ctrl, cid) or "", name)
                if name in cl.OPTIONAL_FILES and not os.path.exists(path):
                    continue
                if name == "blkio.weight" and not os.path.exists(path):
                    path = os.path.join(os.path.dirname(path), "blkio.bfq.weight")
                    if not os.path.exists(path):
                        raise ConfigError("this kernel does not support block I/O weight (no blkio.weight)")
                fs.write(path, value)
        except BaseException:
            for d in reversed(made):
                fs.rmdir_retry(d, time.monotonic() + 1)
            raise

    def kill_all(self, cid: str) -> None:
        freezer = self.dir_for("freezer", cid)
        if freezer is None or not os.path.isdir(freezer):
            for _ in range(100):
                pids = self.pids(cid)
                if not pids:
                    return
                for pid in pids:
                    fs.kill(pid)
                time.sleep(0.001)
            return
        state = os.path.join(freezer, "freezer.state")
        fs.write(state, "FROZEN")
        try:
            deadline = time.monotonic() + 1.0
            while fs.read(state).strip() != "FROZEN" and time.monotonic() < deadline:
                time.sleep(0.001)
            for pid in self.pids(cid):
                fs.kill(pid)
        finally:
            fs.write(state, "THAWED")

    def oom_kills(self, cid: str) -> int:
        memory = self.dir_for("memory", cid)
        if memory is None:
            return 0
        try:
            text = fs.read(os.path.join(memory, "memory.oom_control"))
        except FileNotFoundError:
            return 0
        return fs.counter(text, "oom_kill")

    def stats(self, cid: str) -> dict[str, float]:
        def num(ctrl: str, name: str) -> int:
            d = self.dir_for(ctrl, cid)
            try:
                return int(fs.read(os.path.join(d, name)).split()[0]) if d else 0
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
