"""cgroup v2 (the unified tree real hosts run): one cgroup per container, controllers enabled above it.

v2's "no internal processes" rule means the controllers a container's limits need are enabled in
every parent's ``cgroup.subtree_control`` down from the launcher's own cgroup (or the hierarchy root
for an absolute parent). ``memory.oom.group`` makes an OOM kill the whole container; killing uses
``cgroup.kill`` (Linux 5.14), falling back to signalling every pid. v2 has no devices files: each
container's cgroup gets the BPF device program equal to the v1 allow-list (devices.py).
"""

from __future__ import annotations

import errno
import os
import time

from shoal.runtime.cgroup import fs
from shoal.runtime.cgroup import limits as cl
from shoal.runtime.cgroup.base import Cgroups
from shoal.runtime.cgroup.devices import DeviceFilter
from shoal.runtime.cgroup.hierarchy import CgroupMount, host_path
from shoal.runtime.errors import ConfigError, ContainerError


class CgroupsV2(Cgroups):
    """One cgroup in the unified hierarchy; controllers are enabled down the parents as needed."""

    version = 2

    def __init__(self, mount: CgroupMount, own: str, parent: str, devices: DeviceFilter | None = None) -> None:
        super().__init__(parent)
        self.mount = mount
        self.own = own
        self.base = host_path(mount, own, self.parent)
        # Where enabling controllers starts: the hierarchy root, or the launcher's own cgroup.
        self.top = host_path(mount, own, "/" if self.parent.startswith("/") else "")
        self.devices = devices or DeviceFilter()

    def dirs(self, cid: str) -> list[str]:
        return [os.path.join(self.base, cid)]

    def _enable(self, needed: set[str]) -> None:
        """Enable the controllers the limits need (an error when one is missing) and, when available,
        the ones stats read (memory.current, pids.current exist only where their controller is on)."""
        available = set(fs.read(os.path.join(self.top, "cgroup.controllers")).split())
        missing = needed - available
        if missing:
            raise ConfigError(
                f"cgroup v2 controller(s) {', '.join(sorted(missing))} not available in {self.top} "
                "(bound to a v1 hierarchy, or not delegated)"
            )
        accounting = (cl.V2_ACCOUNTING & available) - needed
        try:
            self._write_chain(needed | accounting)
        except (ContainerError, OSError):
            if needed:
                raise
            # no limit needs them: a container still runs where they cannot be enabled (its stats read 0)

    def _write_chain(self, needed: set[str]) -> None:
        if not needed:
            return
        chain = [self.top]
        rel = os.path.relpath(self.base, self.top)
        for part in [] if rel == "." else rel.split("/"):
            chain.append(os.path.join(chain[-1], part))
        for d in chain:
            os.makedirs(d, exist_ok=True)
            try:
                fs.write(os.path.join(d, "cgroup.subtree_control"), " ".join(f"+{c}" for c in sorted(needed)))
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
            self._attach_devices(d)
            for name, value in cl.v2_writes(limits):
                path = os.path.join(d, name)
                if name == "io.weight" and os.path.exists(os.path.join(d, cl.V2_BFQ_WEIGHT)):
                    path, value = os.path.join(d, cl.V2_BFQ_WEIGHT), str(limits.blkio_weight)
                if name in cl.OPTIONAL_FILES and not os.path.exists(path):
                    continue
                fs.write(path, value)
        except BaseException:
            fs.rmdir_retry(d, time.monotonic() + 1)
            raise

    def _attach_devices(self, d: str) -> None:
        try:
            self.devices.attach(d)
        except OSError as exc:
            raise ContainerError(f"cannot attach the device filter (BPF_CGROUP_DEVICE) to {d}: {exc.strerror}") from None

    def populated(self, cid: str) -> bool:
        try:
            return fs.counter(fs.read(os.path.join(self.dirs(cid)[0], "cgroup.events")), "populated") > 0
        except FileNotFoundError:
            return False

    def kill_all(self, cid: str) -> None:
        d = self.dirs(cid)[0]
        kill_file = os.path.join(d, "cgroup.kill")
        if os.path.exists(kill_file):
            fs.write(kill_file, "1")
        else:  # kernels before 5.14
            for pid in fs.pids(d):
                fs.kill(pid)
        deadline = time.monotonic() + 1.0
        while self.populated(cid) and time.monotonic() < deadline:
            time.sleep(0.001)

    def stats(self, cid: str) -> dict[str, float]:
        d = self.dirs(cid)[0]

        def raw(name: str) -> str:
            try:
                return fs.read(os.path.join(d, name)).strip()
            except FileNotFoundError:
                return ""

        def num(name: str) -> int:
            text = raw(name)
            return int(text) if text.isdigit() else 0

        return {
            "cpu_seconds": fs.counter(raw("cpu.stat"), "usage_usec") / 1e6,
            "memory_bytes": num("memory.current"),
            "memory_peak_bytes": num("memory.peak"),
            "memory_limit_bytes": num("memory.max"),
            "pids": num("pids.current"),
        }

    def oom_kills(self, cid: str) -> int:
        try:
            return fs.counter(fs.read(os.path.join(self.dirs(cid)[0], "memory.events")), "oom_kill")
        except FileNotFoundError:
            return 0
