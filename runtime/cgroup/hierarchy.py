"""Pure cgroup knowledge: which cgroup filesystems the host has mounted and where a cgroup lives.

Parses /proc/self/mountinfo and /proc/self/cgroup (plain strings in, plain data out, so it is unit
tested without a host), picks v1 or v2 the way this machine's hybrid layout needs, and computes the
directory of a cgroup below the calling process' own. The lab uses it too, for its hosts' cgroups.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer", "devices", "blkio")
"""v1 hierarchies a container gets a cgroup in (those the host has mounted)."""
KNOWN_V1_CONTROLLERS = frozenset(
    {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio", "blkio"}
    | {"perf_event", "hugetlb", "pids", "rdma", "misc"}
)


@dataclass(frozen=True)
class CgroupMount:
    """One cgroup filesystem mount: v1 (with its controllers) or v2."""

    mountpoint: str
    root: str
    version: int
    controllers: frozenset[str]


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def parse_mountinfo(text: str) -> list[CgroupMount]:
    """The cgroup and cgroup2 mounts listed in a /proc/<pid>/mountinfo text."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        fstype, super_opts = rfields[0], rfields[2].split(",")
        if fstype == "cgroup2":
            mounts.append(CgroupMount(_unescape(fields[4]), _unescape(fields[3]), 2, frozenset()))
        elif fstype == "cgroup":
            ctrls = frozenset(o for o in super_opts if o in KNOWN_V1_CONTROLLERS)
            mounts.append(CgroupMount(_unescape(fields[4]), _unescape(fields[3]), 1, ctrls))
    return mounts


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """Map each v1 controller (and ``""`` for v2) to the process' cgroup path."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, ctrls, path = parts
        if not ctrls:
            paths[""] = path
        for ctrl in ctrls.split(","):
            if ctrl:
                paths[ctrl] = path
    return paths


def host_path(mount: CgroupMount, proc_path: str, below: str) -> str:
    """The directory of cgroup ``proc_path + below`` under ``mount`` (absolute if ``below`` starts with /)."""
    if below.startswith("/"):
        rel = below
    else:
        if mount.root != "/" and proc_path.startswith(mount.root):
            proc_path = proc_path[len(mount.root) :] or "/"
        rel = proc_path.rstrip("/") + "/" + below
    return posixpath.normpath(mount.mountpoint + "/" + rel.strip("/"))


def choose_layout(mounts: list[CgroupMount]) -> tuple[int, list[CgroupMount]]:
    """Pick v2 when the host is unified-only, else the v1 hierarchies with the controllers we use.

    On a hybrid host (v1 controllers plus a nearly empty cgroup2 at /sys/fs/cgroup/unified) the
    controllers that matter are bound to v1, so v1 is used.
    """
    v1 = [m for m in mounts if m.version == 1 and m.controllers & set(V1_CONTROLLERS)]
    seen: set[str] = set()
    unique = []
    for m in v1:
        if m.mountpoint not in seen and not any(m.controllers == u.controllers for u in unique):
            seen.add(m.mountpoint)
            unique.append(m)
    if unique:
        return 1, unique
    v2 = [m for m in mounts if m.version == 2]
    if v2:
        preferred = [m for m in v2 if m.mountpoint == "/sys/fs/cgroup"]
        return 2, (preferred or v2)[:1]
    return 0, []
