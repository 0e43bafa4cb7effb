"""`shoal lab` on a cgroup-v2-only host: each lab host gets a delegated cgroup subtree (shoal/lab/cgroups.py).

1 manager + 2 workers, as a user runs them. The node's own processes sit in ``<host>/host``, its
containers in ``<host>/shoal/<id>`` with their limits in force, and ``lab down`` leaves nothing. On hybrid
hosts (every controller on v1) tests/e2e/test_lab.py covers the lab; this is its v2 twin, run by
``make test-v2`` in the cgroup-v2 VM.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from shoal.runtime.cgroup import hierarchy
from tests.e2e.lab_fixtures import running_lab

VERSION = hierarchy.choose_layout(hierarchy.parse_mountinfo(Path("/proc/self/mountinfo").read_text()))[0]
pytestmark = pytest.mark.skipif(
    VERSION != 2,
    reason="cgroup v2 twin: this host binds the controllers to v1; make test runs it in the cgroup-v2 VM (tests/v2vm)",
)


def v2_cgroup(pid: int) -> str:
    return next(x[3:] for x in Path(f"/proc/{pid}/cgroup").read_text().splitlines() if x.startswith("0::"))


def test_lab_hosts_get_delegated_subtrees_with_limits_in_force(tmp_path: Path) -> None:
    with running_lab(tmp_path / "labs", "v2", "--workers", "2") as lab:
        assert lab.node_status() == {"manager1": "Ready", "worker1": "Ready", "worker2": "Ready"}
        lab.shoal("svc", "create", "--name", "lim", "--replicas", "2", "--limit-memory", "64M", "host", "sleep", "1000")
        tasks = [t for t in lab.json("svc", "ps", "lim") if t["DesiredState"] == "Running"]
        assert Counter(t["Node"] for t in tasks) == {"worker1": 1, "worker2": 1}
        for node in lab.state()["nodes"]:
            top = node["cgroups"][0]
            rel = "/" + os.path.relpath(top, "/sys/fs/cgroup")
            assert rel == f"/shoal-lab/{lab.name}/{node['name']}"
            assert v2_cgroup(node["daemon"]["pid"]) == f"{rel}/host", "the node's processes: a leaf of its own"
            if node["role"] != "worker":
                continue
            enabled = set(Path(top, "cgroup.subtree_control").read_text().split())
            assert {"cpu", "io", "memory", "pids"} <= enabled, "controllers delegated to the host"
            sleeps = [
                (d, pid)
                for d, _, _ in os.walk(f"{top}/shoal")
                for pid in Path(d, "cgroup.procs").read_text().split()
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep\0")
            ]
            assert len(sleeps) == 1, f"{node['name']}: one task container, below its runtime's child: {sleeps}"
            assert Path(sleeps[0][0], "memory.max").read_text().strip() == str(64 << 20)
