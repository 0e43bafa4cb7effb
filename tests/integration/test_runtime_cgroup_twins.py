"""Every container limit, checked in the files of the host's cgroup version: a v1 and a v2 twin each.

The v1 twins run on hybrid hosts like the build machines; the v2 twins run on cgroup-v2-only hosts, which
``make test-v2`` provides as a VM (tests/v2vm). Values are the ones docker (through runc) writes for the
same flags. Behaviour that does not depend on the version (OOM, the pids limit biting, the private cgroup
namespace) is tested once and runs in both places.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shoal.runtime import ContainerConfig, ContainerInfo, Runtime, logs
from shoal.runtime.cgroup import devices, hierarchy
from shoal.runtime.cgroup.limits import DEVICE_RULES, cpu_weight, io_weight

VERSION = hierarchy.choose_layout(hierarchy.parse_mountinfo(Path("/proc/self/mountinfo").read_text()))[0]
OWN = hierarchy.parse_proc_cgroup(Path("/proc/self/cgroup").read_text())

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: containers use namespaces, mounts and cgroups"),
]
v1_twin = pytest.mark.skipif(
    VERSION != 1, reason="cgroup v1 twin: this host is cgroup v2 only (its v2 twin runs here)"
)
v2_twin = pytest.mark.skipif(
    VERSION != 2, reason="cgroup v2 twin: this host binds the controllers to v1; make test-v2 runs it in a VM"
)
MIB = 1 << 20


def v1_file(controller: str, info: ContainerInfo, name: str) -> Path:
    return Path("/sys/fs/cgroup", controller, OWN[controller].lstrip("/"), info.cgroup.lstrip("/"), name)


def v2_file(info: ContainerInfo, name: str) -> Path:
    return Path("/sys/fs/cgroup", OWN.get("", "/").lstrip("/"), info.cgroup.lstrip("/"), name)


def read(path: Path) -> str:
    return path.read_text().strip()


async def _create(rt: Runtime, **limits: int) -> ContainerInfo:
    return await rt.create(ContainerConfig(id="lim", image="host", args=["sleep", "30"], **limits))


@v1_twin
async def test_v1_memory_limit_and_swap_as_docker_sets_them(rt: Runtime) -> None:
    info = await _create(rt, memory_bytes=64 * MIB)
    assert read(v1_file("memory", info, "memory.limit_in_bytes")) == str(64 * MIB)
    memsw = v1_file("memory", info, "memory.memsw.limit_in_bytes")
    if memsw.exists():  # only where the kernel accounts swap
        assert read(memsw) == str(128 * MIB), "--memory alone: as much swap as memory"


@v2_twin
async def test_v2_memory_max_swap_high_and_oom_group_as_docker_sets_them(rt: Runtime) -> None:
    info = await _create(rt, memory_bytes=64 * MIB)
    assert read(v2_file(info, "memory.max")) == str(64 * MIB)
    assert read(v2_file(info, "memory.high")) == "max", "docker sets no soft limit"
    assert read(v2_file(info, "memory.oom.group")) == "1", "an OOM kills the whole container"
    swap = v2_file(info, "memory.swap.max")
    if swap.exists():  # only where the kernel accounts swap
        assert read(swap) == str(64 * MIB), "--memory alone: as much swap as memory"


@v1_twin
async def test_v1_cpus_and_cpu_shares(rt: Runtime) -> None:
    info = await _create(rt, nano_cpus=500_000_000, cpu_shares=512)
    assert read(v1_file("cpu", info, "cpu.cfs_period_us")) == "100000"
    assert read(v1_file("cpu", info, "cpu.cfs_quota_us")) == "50000"
    assert read(v1_file("cpu", info, "cpu.shares")) == "512"


@v2_twin
async def test_v2_cpus_as_cpu_max_and_cpu_shares_as_runcs_cpu_weight(rt: Runtime) -> None:
    info = await _create(rt, nano_cpus=500_000_000, cpu_shares=512)
    assert read(v2_file(info, "cpu.max")).split() == ["50000", "100000"]
    assert read(v2_file(info, "cpu.weight")) == str(cpu_weight(512)) == "20"


@v1_twin
async def test_v1_pids_limit(rt: Runtime) -> None:
    info = await _create(rt, pids_limit=20)
    assert read(v1_file("pids", info, "pids.max")) == "20"


@v2_twin
async def test_v2_pids_max(rt: Runtime) -> None:
    info = await _create(rt, pids_limit=20)
    assert read(v2_file(info, "pids.max")) == "20"


@v1_twin
async def test_v1_blkio_weight(rt: Runtime) -> None:
    info = await _create(rt, blkio_weight=300)
    files = [v1_file("blkio", info, n) for n in ("blkio.weight", "blkio.bfq.weight")]
    found = [f for f in files if f.exists()]
    assert found and read(found[0]).split()[-1] == "300"


@v2_twin
async def test_v2_blkio_weight_as_io_weight_or_bfq_weight(rt: Runtime) -> None:
    info = await _create(rt, blkio_weight=300)
    bfq = v2_file(info, "io.bfq.weight")
    if bfq.exists():  # BFQ takes the v1 value as it is (runc does the same)
        assert read(bfq).split()[-1] == "300"
    else:
        assert read(v2_file(info, "io.weight")) == f"default {io_weight(300)}"


FORK_LOOP = """
import os, time
started = 0
for _ in range(12):
    try:
        if os.fork() == 0:
            time.sleep(5)
            os._exit(0)
        started += 1
    except OSError:
        pass
print(started)
"""


@v1_twin
async def test_v1_devices_list_is_the_allow_list(rt: Runtime) -> None:
    info = await _create(rt)
    assert sorted(read(v1_file("devices", info, "devices.list")).splitlines()) == sorted(DEVICE_RULES)


@v2_twin
async def test_v2_device_program_on_each_containers_cgroup(rt: Runtime) -> None:
    """v2 has no devices files: each container's own cgroup carries the allow-list program (one, whatever
    its parents have), and it goes with the cgroup."""
    first, second = await _create(rt), await rt.create(ContainerConfig(id="two", image="host", args=["true"]))
    for info in (first, second):
        assert devices.attached(str(v2_file(info, ""))) == 1
    assert devices.attached(str(v2_file(first, "")).rsplit("/", 2)[0]) == 0, "not on the parent: per container"


async def test_the_pids_limit_stops_a_fork_loop(rt: Runtime) -> None:
    py = "/usr/bin/python3"
    await rt.create(ContainerConfig(id="fork", image="host", args=[py, "-c", FORK_LOOP], pids_limit=6))
    await rt.start("fork")
    info = await rt.wait("fork")
    out = logs.text(info.log_path).split()
    assert out and 0 < int(out[-1]) <= 5, f"pids.max 6 (python itself is one) let {out} children start"


async def test_each_container_has_a_private_cgroup_namespace_rooted_at_its_cgroup(rt: Runtime) -> None:
    script = "cat /proc/self/cgroup; readlink /proc/self/ns/cgroup"
    await rt.create(ContainerConfig(id="ns", image="host", args=["/bin/sh", "-c", script]))
    await rt.start("ns")
    info = await rt.wait("ns")
    *cgroups, ns = logs.text(info.log_path).split()
    assert ns.startswith("cgroup:[") and ns != os.readlink("/proc/self/ns/cgroup"), "its own cgroup namespace"
    assert cgroups and all(line.endswith(":/") for line in cgroups), cgroups
    if VERSION == 2:
        assert cgroups == ["0::/"]
