"""A lab host's delegated cgroup v2 subtree on the real kernel (shoal/lab/cgroups.py).

Runs on any cgroup2 mount: on hybrid build hosts the nearly empty /sys/fs/cgroup/unified (no controller
to delegate there, but the tree, the leaf, the kill and the removal are the kernel's), in the cgroup-v2 VM
/sys/fs/cgroup with every controller. tests/e2e/test_lab_v2.py runs a whole lab on a v2-only host.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from shoal.lab import cgroups
from shoal.runtime.cgroup import hierarchy

pytestmark = [pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="needs root: cgroups")]
V2 = [m for m in hierarchy.parse_mountinfo(Path("/proc/self/mountinfo").read_text()) if m.version == 2]


@pytest.mark.skipif(not V2, reason="no cgroup2 filesystem is mounted on this host")
def test_a_node_subtree_holds_its_processes_in_a_leaf_and_dies_and_goes_as_a_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    mount = V2[0]
    monkeypatch.setattr(cgroups, "_layout", lambda: (2, [mount]))
    lab = f"shoal-test-{uuid.uuid4().hex[:8]}"
    lab_dirs = cgroups.lab_dirs(lab)
    assert lab_dirs == [f"{mount.mountpoint}/shoal-lab/{lab}"]
    node = cgroups.node_dirs(lab_dirs, "worker1")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        cgroups.create(node)
        offered = set(Path(mount.mountpoint, "cgroup.controllers").read_text().split())
        enabled = set(Path(node[0], "cgroup.subtree_control").read_text().split())
        assert enabled == offered & set(cgroups.DELEGATED), "the node may limit its children with them"
        for _ in range(2):
            procs.append(subprocess.Popen(["sleep", "60"], preexec_fn=lambda: cgroups.join_self(node)))
        for p in procs:
            line = next(x for x in Path(f"/proc/{p.pid}/cgroup").read_text().splitlines() if x.startswith("0::"))
            assert line == f"0::/shoal-lab/{lab}/worker1/host", line
        assert cgroups.runtime_parent(node) == f"/shoal-lab/{lab}/worker1/shoal"
        os.makedirs(f"{node[0]}/shoal/c1")  # where the node's runtime puts a container: a sibling of the leaf
        assert {p.pid for p in procs} <= cgroups.pids(node)
        cgroups.kill_all(node)
        assert [p.wait(10) for p in procs] == [-9, -9]
        cgroups.remove(lab_dirs)
        cgroups.remove_parent_if_empty(lab_dirs)
        assert cgroups.leftovers(lab_dirs) == []
    finally:
        for p in procs:
            p.kill()
            p.wait()
        if os.path.isdir(lab_dirs[0]):
            cgroups.remove(lab_dirs)
