"""Which cgroup manager this host gets: v1 on a hybrid host, v2 on a unified one (see hierarchy).

Imported by ``shoal.runtime.cgroup.detect`` on first use (only the launcher creates cgroups).
"""

from __future__ import annotations

from shoal.runtime.cgroup import fs
from shoal.runtime.cgroup.base import Cgroups
from shoal.runtime.cgroup.hierarchy import choose_layout, parse_mountinfo, parse_proc_cgroup
from shoal.runtime.cgroup.v1 import CgroupsV1
from shoal.runtime.cgroup.v2 import CgroupsV2
from shoal.runtime.errors import ContainerError


def detect(parent: str) -> Cgroups:
    """The cgroup manager for this host, rooted below the calling process' own cgroup."""
    mounts = parse_mountinfo(fs.read("/proc/self/mountinfo"))
    own = parse_proc_cgroup(fs.read("/proc/self/cgroup"))
    version, chosen = choose_layout(mounts)
    if version == 1:
        return CgroupsV1(chosen, own, parent)
    if version == 2:
        return CgroupsV2(chosen[0], own.get("", "/"), parent)
    raise ContainerError("no cgroup filesystem is mounted (neither v1 controllers nor cgroup2)")
