"""Nested cgroup delegation for lab hosts on cgroup v2 (shoal/lab/cgroups.py), on fake cgroup trees.

A fake tree is a plain directory, made the host's chosen cgroup2 mount for the test. The real-kernel halves are tests/integration/test_lab_cgroup_tree.py (here, on the
machine's cgroup2 mount) and tests/e2e/test_lab_v2.py (a whole lab in the cgroup-v2 VM).
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from shoal.lab import cgroups, lifecycle, procs, state
from shoal.lab.state import LabError
from shoal.runtime.cgroup.hierarchy import CgroupMount


def v2_tree(tmp_path: Path) -> Path:
    root = tmp_path / "cg2"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (root / "cgroup.subtree_control").write_text("")
    return root


@pytest.fixture
def on_v2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = v2_tree(tmp_path)
    monkeypatch.setattr(cgroups, "_layout", lambda: (2, [CgroupMount(str(root), "/", 2, frozenset())]))
    return root


def test_chain_runs_from_the_root_down_to_the_node() -> None:
    assert cgroups.chain("/sys/fs/cgroup", "/sys/fs/cgroup/shoal-lab/l1/worker1") == [
        "/sys/fs/cgroup",
        "/sys/fs/cgroup/shoal-lab",
        "/sys/fs/cgroup/shoal-lab/l1",
        "/sys/fs/cgroup/shoal-lab/l1/worker1",
    ]
    assert cgroups.chain("/sys/fs/cgroup", "/sys/fs/cgroup") == ["/sys/fs/cgroup"]


def test_v1_nodes_join_their_own_cgroup_and_keep_the_runtime_default(tmp_path: Path) -> None:
    v1 = tmp_path / "memory"
    v1.mkdir()
    dirs = [str(v1 / "shoal-lab" / "l1" / "worker1")]
    assert not cgroups.is_v2(dirs[0])
    assert cgroups.join_dirs(dirs) == dirs
    assert cgroups.runtime_parent(dirs) == ""


def test_v2_nodes_join_a_leaf_and_their_runtime_gets_the_sibling_as_an_absolute_parent(on_v2: Path) -> None:
    node = str(on_v2 / "shoal-lab" / "l1" / "worker1")
    assert cgroups.is_v2(str(on_v2 / "shoal-lab"))
    cgroups.create([node])
    assert cgroups.is_v2(node)
    assert cgroups.join_dirs([node]) == [f"{node}/host"]
    assert Path(node, "host").is_dir()
    assert cgroups.runtime_parent([node]) == "/shoal-lab/l1/worker1/shoal"


def test_v2_create_enables_the_limit_controllers_from_the_root_down_to_each_node(on_v2: Path) -> None:
    node = on_v2 / "shoal-lab" / "l1" / "worker1"
    written: list[tuple[str, str]] = []
    real_write = cgroups._write

    def record(path: str, value: str) -> None:
        written.append((path, value))
        real_write(path, value)

    cgroups._write = record  # type: ignore[assignment]
    try:
        cgroups.create([str(node)])
    finally:
        cgroups._write = real_write  # type: ignore[assignment]
    want = "+cpuset +cpu +io +memory +pids"  # what the root offers of them; never hugetlb, rdma or misc
    assert written == [
        (f"{d}/cgroup.subtree_control", want) for d in (on_v2, on_v2 / "shoal-lab", on_v2 / "shoal-lab/l1", node)
    ]
    assert not Path(node, "host", "cgroup.subtree_control").exists(), "the processes' leaf enables nothing"


def test_v2_delegation_refused_by_a_cgroup_with_processes_names_it(on_v2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def busy(path: str, value: str) -> None:
        if not path.endswith("/l1/cgroup.subtree_control"):
            return
        raise OSError(errno.EBUSY, "Device or resource busy")

    monkeypatch.setattr(cgroups, "_write", busy)
    with pytest.raises(LabError, match=r"cannot delegate cpu.*shoal-lab/l1: Device or resource busy.*no internal processes"):
        cgroups.delegate(str(on_v2), str(on_v2 / "shoal-lab" / "l1" / "n1"), ["cpu"])


def test_v2_lab_lives_at_the_hierarchy_root_not_below_the_commands_cgroup(on_v2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_read = cgroups._read
    monkeypatch.setattr(cgroups, "_read", lambda p: "0::/user.slice/session-4.scope\n" if p == "/proc/self/cgroup" else real_read(p))
    assert cgroups.lab_dirs("l1") == [str(on_v2 / "shoal-lab" / "l1")]


def test_on_v2_a_node_daemon_is_started_with_its_runtime_parent(on_v2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ipaddress

    lab = state.plan("l1", 1, 1, ipaddress.ip_network("172.30.9.0/24"), tmp_path, False)
    lab.cgroups = [str(on_v2 / "shoal-lab" / "l1")]
    for n in lab.nodes:
        n.cgroups = cgroups.node_dirs(lab.cgroups, n.name)
        cgroups.create(n.cgroups)
    started: dict[str, list[str]] = {}
    monkeypatch.setattr(procs, "spawn", lambda node, argv, name, *_: started.setdefault(node.name, argv) and None)
    monkeypatch.setattr(state.Lab, "save", lambda self: None)
    for n in lab.nodes:
        lifecycle.start_daemon(lab, n, first=n.role == "manager")
    for n in lab.nodes:
        argv = started[n.name]
        assert argv[argv.index("--cgroup-parent") + 1] == f"/shoal-lab/l1/{n.name}/shoal", argv
