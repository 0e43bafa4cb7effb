"""Pure cgroup logic: limit files for v1 and v2, CFS quota, and reading the host's cgroup layout."""

from __future__ import annotations

import pytest

from shoal.runtime.cgroup import hierarchy
from shoal.runtime.cgroup import limits as cl

HYBRID_MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
SYSTEMD_V1_MOUNTINFO = """\
30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
31 25 0:27 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
"""
UNIFIED_MOUNTINFO = "30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev - cgroup2 cgroup2 rw,nsdelegate\n"
PROC_CGROUP = """\
9:name=systemd:/
8:pids:/
4:memory:/process_api/abc
1:cpu,cpuacct:/
0::/
"""


def test_cfs_quota_from_nano_cpus() -> None:
    assert cl.cfs_quota_us(1_000_000_000) == 100_000
    assert cl.cfs_quota_us(1_500_000_000) == 150_000
    assert cl.cfs_quota_us(250_000_000) == 25_000
    assert cl.cfs_quota_us(1) == cl.MIN_CFS_QUOTA_US


def test_v1_writes_in_order() -> None:
    writes = cl.v1_writes(cl.Limits(memory_bytes=32 << 20, pids=64, nano_cpus=500_000_000))
    assert writes == [
        ("memory", "memory.limit_in_bytes", str(32 << 20)),
        ("memory", "memory.memsw.limit_in_bytes", str(64 << 20)),  # docker: as much swap as memory
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "50000"),
        ("pids", "pids.max", "64"),
    ]
    assert cl.v1_writes(cl.Limits()) == []


def test_v2_writes_and_controllers() -> None:
    limits = cl.Limits(memory_bytes=1 << 30, pids=10, nano_cpus=2_000_000_000)
    assert cl.v2_writes(limits) == [
        ("memory.max", str(1 << 30)),
        ("memory.swap.max", str(1 << 30)),  # docker's default: as much swap as memory
        ("memory.oom.group", "1"),
        ("cpu.max", "200000 100000"),
        ("pids.max", "10"),
    ]
    assert cl.v2_controllers(limits) == {"memory", "cpu", "pids"}
    assert cl.v2_controllers(cl.Limits(pids=1)) == {"pids"}
    assert cl.v2_writes(cl.Limits()) == []


def test_parse_mountinfo_finds_v1_controllers_and_v2() -> None:
    mounts = hierarchy.parse_mountinfo(HYBRID_MOUNTINFO)
    by_point = {m.mountpoint: m for m in mounts}
    assert by_point["/sys/fs/cgroup/memory"].controllers == {"memory"}
    assert by_point["/sys/fs/cgroup/memory"].version == 1
    assert by_point["/sys/fs/cgroup/systemd"].controllers == frozenset()
    assert by_point["/sys/fs/cgroup/unified"].version == 2
    assert "/proc" not in by_point and "/" not in by_point


def test_hybrid_host_uses_v1() -> None:
    version, chosen = hierarchy.choose_layout(hierarchy.parse_mountinfo(HYBRID_MOUNTINFO))
    assert version == 1
    assert sorted(m.mountpoint.rsplit("/", 1)[1] for m in chosen) == [
        "cpu",
        "cpuacct",
        "freezer",
        "memory",
        "pids",
    ]


def test_comounted_v1_hierarchy_counts_once() -> None:
    version, chosen = hierarchy.choose_layout(hierarchy.parse_mountinfo(SYSTEMD_V1_MOUNTINFO))
    assert version == 1 and len(chosen) == 2
    assert chosen[0].controllers == {"cpu", "cpuacct"}


def test_unified_host_uses_v2_and_no_cgroups_gives_zero() -> None:
    version, chosen = hierarchy.choose_layout(hierarchy.parse_mountinfo(UNIFIED_MOUNTINFO))
    assert version == 2 and chosen[0].mountpoint == "/sys/fs/cgroup"
    assert hierarchy.choose_layout([]) == (0, [])


def test_parse_proc_cgroup() -> None:
    paths = hierarchy.parse_proc_cgroup(PROC_CGROUP)
    assert paths["memory"] == "/process_api/abc"
    assert paths["cpu"] == paths["cpuacct"] == "/"
    assert paths["name=systemd"] == "/"
    assert paths[""] == "/"


@pytest.mark.parametrize(
    ("root", "own", "below", "expected"),
    [
        ("/", "/", "shoal/c1", "/sys/fs/cgroup/memory/shoal/c1"),
        ("/", "/process_api/abc", "shoal/c1", "/sys/fs/cgroup/memory/process_api/abc/shoal/c1"),
        ("/", "/process_api/abc", "/shoal/c1", "/sys/fs/cgroup/memory/shoal/c1"),
        ("/", "/process_api/abc", "", "/sys/fs/cgroup/memory/process_api/abc"),
        ("/docker/xyz", "/docker/xyz/agent", "shoal/c1", "/sys/fs/cgroup/memory/agent/shoal/c1"),
    ],
)
def test_host_path(root: str, own: str, below: str, expected: str) -> None:
    mount = hierarchy.CgroupMount("/sys/fs/cgroup/memory", root, 1, frozenset({"memory"}))
    assert hierarchy.host_path(mount, own, below) == expected


def test_weights_and_device_rules() -> None:
    v1 = cl.v1_writes(cl.Limits(cpu_shares=512, blkio_weight=300))
    assert v1 == [("cpu", "cpu.shares", "512"), ("blkio", "blkio.weight", "300")]
    v2 = cl.v2_writes(cl.Limits(cpu_shares=1024, blkio_weight=300))
    assert v2 == [("cpu.weight", "39"), ("io.weight", "2930")]
    assert cl.v2_controllers(cl.Limits(cpu_shares=2, blkio_weight=10)) == {"cpu", "io"}
    assert cl.cpu_weight(2) == 1 and cl.cpu_weight(262144) == 10000
    assert cl.io_weight(10) == 1 and cl.io_weight(500) == 4950 and cl.io_weight(1000) == 10000  # runc's table
    rules = cl.v1_device_writes()
    assert rules[0] == ("devices", "devices.deny", "a") and ("devices", "devices.allow", "c 1:3 rwm") in rules
    assert not any("1:1 " in r[2] for r in rules)  # /dev/mem stays closed


def test_device_list_is_default_only_for_exactly_the_allow_list() -> None:
    text = "\n".join(reversed(cl.DEVICE_RULES)) + "\n"
    assert cl.device_list_is_default(text)
    assert not cl.device_list_is_default("a *:* rwm\n")
    assert not cl.device_list_is_default(text + "c 1:1 rwm\n")
    assert not cl.device_list_is_default("\n".join(cl.DEVICE_RULES[1:]))
