"""The v1 and v2 cgroup managers against a fake cgroupfs in a temporary directory: where each
container's cgroup lives, how its statistics and OOM kills are read, how a failed create is undone.
The real kernel side (limits enforced, kill) is covered by tests/integration/test_runtime*.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shoal.runtime import ConfigError, ContainerError
from shoal.runtime.cgroup import detect, fs
from shoal.runtime.cgroup.devices import DeviceFilter
from shoal.runtime.cgroup.hierarchy import CgroupMount
from shoal.runtime.cgroup.limits import Limits
from shoal.runtime.cgroup.v1 import CgroupsV1
from shoal.runtime.cgroup.v2 import CgroupsV2


def v1(tmp_path: Path, *controllers: str, parent: str = "rt") -> CgroupsV1:
    mounts = [CgroupMount(str(tmp_path / c), "/", 1, frozenset({c})) for c in controllers]
    return CgroupsV1(mounts, {c: "/agent" for c in controllers}, parent)


def fill(directory: str, files: dict[str, str]) -> None:
    os.makedirs(directory, exist_ok=True)
    for name, text in files.items():
        Path(directory, name).write_text(text)


def test_v1_dirs_are_below_the_launchers_own_cgroup(tmp_path: Path) -> None:
    cg = v1(tmp_path, "memory", "pids")
    assert cg.dirs("c1") == [str(tmp_path / "memory/agent/rt/c1"), str(tmp_path / "pids/agent/rt/c1")]
    assert cg.relpath("c1") == "rt/c1"
    assert cg.dir_for("pids", "c1") == str(tmp_path / "pids/agent/rt/c1") and cg.dir_for("cpu", "c1") is None
    absolute = v1(tmp_path, "memory", parent="/top")
    assert absolute.dirs("c1") == [str(tmp_path / "memory/top/c1")], "an absolute parent ignores our own cgroup"


def test_v1_join_files_exist_only_for_made_dirs(tmp_path: Path) -> None:
    cg = v1(tmp_path, "memory", "pids")
    os.makedirs(cg.dirs("c1")[0])
    assert cg.self_join_files("c1") == [cg.dirs("c1")[0] + "/tasks"]
    assert cg.procs_files("c1") == [cg.dirs("c1")[0] + "/cgroup.procs"]
    assert cg.exists("c1") and not cg.exists("c2")


def test_v1_stats_oom_and_populated_are_read_from_the_files(tmp_path: Path) -> None:
    cg = v1(tmp_path, "memory", "cpuacct", "pids")
    mem, cpu, pids = cg.dirs("c1")
    fill(mem, {
        "memory.usage_in_bytes": "1048576\n", "memory.max_usage_in_bytes": "2097152\n",
        "memory.limit_in_bytes": "9223372036854771712\n",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", "cgroup.procs": "",
    })  # fmt: skip
    fill(cpu, {"cpuacct.usage": "2500000000\n", "cgroup.procs": ""})
    fill(pids, {"pids.current": "3\n", "cgroup.procs": "10\n11\n"})
    assert cg.stats("c1") == {
        "cpu_seconds": 2.5, "memory_bytes": 1 << 20, "memory_peak_bytes": 2 << 20,
        "memory_limit_bytes": 0, "pids": 3,
    }  # fmt: skip
    assert cg.oom_kills("c1") == 2
    assert not cg.populated("c1"), "the first hierarchy (memory) decides"
    assert cg.pids("c1") == [10, 11]
    Path(mem, "memory.limit_in_bytes").write_text("67108864\n")
    assert cg.stats("c1")["memory_limit_bytes"] == 64 << 20


def test_v1_missing_files_read_as_zero(tmp_path: Path) -> None:
    cg = v1(tmp_path, "memory")
    assert cg.stats("gone") == {
        "cpu_seconds": 0.0, "memory_bytes": 0, "memory_peak_bytes": 0, "memory_limit_bytes": 0, "pids": 0,
    }  # fmt: skip
    assert cg.oom_kills("gone") == 0 and cg.pids("gone") == []


def test_v1_limit_on_an_unmounted_controller_is_a_config_error(tmp_path: Path) -> None:
    cg = v1(tmp_path, "memory")
    with pytest.raises(ConfigError, match="cgroup v1 controller 'pids' is not mounted"):
        cg.create("c1", Limits(pids=10))
    assert not cg.exists("c1")


def test_v1_failed_create_removes_what_it_made(tmp_path: Path) -> None:
    cg = v1(tmp_path, "memory", "pids")
    with pytest.raises(FileNotFoundError):  # a plain directory has no memory.limit_in_bytes
        cg.create("c1", Limits(memory_bytes=64 << 20))
    assert not cg.exists("c1")


def test_v1_blkio_gets_a_cgroup_only_when_a_weight_is_set(tmp_path: Path) -> None:
    cg = v1(tmp_path, "memory", "blkio")
    cg.create("c1", Limits())
    assert [os.path.isdir(d) for d in cg.dirs("c1")] == [True, False]
    cg.delete("c1")
    assert not cg.exists("c1")
    cg.cleanup_parent()
    assert not os.path.exists(tmp_path / "memory/agent/rt")


class FakeDevices(DeviceFilter):
    """Records where the device program would be attached (a tmp dir is no cgroupfs)."""

    def __init__(self) -> None:
        super().__init__()
        self.attached: list[str] = []

    def attach(self, cgroup_dir: str) -> None:
        self.attached.append(cgroup_dir)


def v2(tmp_path: Path, controllers: str = "cpu memory pids io", parent: str = "rt") -> CgroupsV2:
    fill(str(tmp_path / "agent"), {"cgroup.controllers": controllers + "\n"})
    return CgroupsV2(CgroupMount(str(tmp_path), "/", 2, frozenset()), "/agent", parent, FakeDevices())


def test_v2_has_one_dir_and_enables_controllers_from_its_own_cgroup_down(tmp_path: Path) -> None:
    cg = v2(tmp_path)
    assert cg.dirs("c1") == [str(tmp_path / "agent/rt/c1")] and cg.top == str(tmp_path / "agent")
    Path(cg.top, "cgroup.subtree_control").write_text("")
    os.makedirs(cg.base)
    Path(cg.base, "cgroup.subtree_control").write_text("")
    with pytest.raises(FileNotFoundError):  # the fake has no memory.max to write
        cg.create("c1", Limits(memory_bytes=64 << 20, pids=5))
    # cpu too: stats read cpu.stat, memory.current and pids.current, which need their controllers on
    assert Path(cg.top, "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert Path(cg.base, "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert not os.path.exists(cg.dirs("c1")[0]), "the failed create removed its cgroup"
    assert cg.devices.attached == [cg.dirs("c1")[0]], "the device filter is attached before any limit"


def test_v2_enables_the_accounting_controllers_without_limits_and_runs_where_it_cannot(tmp_path: Path) -> None:
    cg = v2(tmp_path, controllers="cpu memory pids io")
    for d in (cg.top, cg.base):
        fill(d, {"cgroup.subtree_control": ""})
    cg.create("c1", Limits())
    assert Path(cg.top, "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    held = v2(tmp_path / "held", controllers="memory")
    os.makedirs(held.base)
    os.mkdir(Path(held.top, "cgroup.subtree_control"))  # writing it fails, as in a cgroup that holds processes
    held.create("c1", Limits())  # no limit needs a controller: the container still gets its cgroup
    assert os.path.isdir(held.dirs("c1")[0])
    with pytest.raises(OSError):
        held.create("c2", Limits(memory_bytes=64 << 20))


def test_v2_names_controllers_it_cannot_enable(tmp_path: Path) -> None:
    cg = v2(tmp_path, controllers="cpu")
    with pytest.raises(ConfigError, match=r"controller\(s\) memory, pids not available"):
        cg.create("c1", Limits(memory_bytes=64 << 20, pids=5))


def test_v2_stats_oom_and_populated(tmp_path: Path) -> None:
    cg = v2(tmp_path)
    fill(cg.dirs("c1")[0], {
        "cpu.stat": "usage_usec 1500000\nuser_usec 1000000\n", "memory.current": "4096\n",
        "memory.peak": "8192\n", "memory.max": "max\n", "pids.current": "2\n",
        "memory.events": "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n", "cgroup.events": "populated 1\nfrozen 0\n",
    })  # fmt: skip
    assert cg.stats("c1") == {
        "cpu_seconds": 1.5, "memory_bytes": 4096, "memory_peak_bytes": 8192, "memory_limit_bytes": 0, "pids": 2,
    }  # fmt: skip
    assert cg.oom_kills("c1") == 1 and cg.populated("c1")
    Path(cg.dirs("c1")[0], "cgroup.events").write_text("populated 0\nfrozen 0\n")
    assert not cg.populated("c1") and not cg.populated("never-made") and cg.oom_kills("never-made") == 0


def test_fs_primitives(tmp_path: Path) -> None:
    assert fs.counter("a 1\nb 22\nc x y\n", "b") == 22 and fs.counter("", "b") == 0
    assert fs.pids(str(tmp_path / "none")) == []
    d = tmp_path / "busy"
    d.mkdir()
    (d / "keep").write_text("")
    with pytest.raises(ContainerError, match="cannot remove cgroup"):
        fs.rmdir_retry(str(d), 0.0)
    fs.rmdir_retry(str(tmp_path / "already-gone"), 0.0)


def test_detect_gives_this_hosts_manager() -> None:
    cg = detect("shoal-test-detect")
    assert cg.version in (1, 2)
    assert all(d.endswith("/shoal-test-detect/x") for d in cg.dirs("x"))
