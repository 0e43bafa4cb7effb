"""`make demo` for real (issue 12: it was only checked with ``bash -n``): deploy/demo.sh brings up its lab of
1 manager and 3 workers, loads the demo image, runs a 6-replica service spread 2 per worker and sends
600 requests through the routing mesh; ``deploy/demo.sh stop`` then removes every piece of it.

The lab's state goes to this test's own SHOAL_LAB_DIR; its bridge and namespaces are the lab's own
(traffic stays inside them and on the lab bridge).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.timing import scaled

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: a lab makes network namespaces, a bridge and cgroups"),
    pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd binary not found; run make setup"),
    pytest.mark.timeout(900),
]


def demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SHOAL_LAB_DIR": str(tmp_path / "labs")}
    env.pop("SHOAL_HOST", None)
    env.pop("SHOAL_LAB", None)
    return subprocess.run([str(ROOT / "deploy" / "demo.sh"), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=scaled(600))


def test_the_demo_runs_end_to_end_and_its_stop_leaves_nothing(tmp_path: Path):
    try:
        res = demo(tmp_path)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        out = res.stdout
        assert "$ shoal lab up --name demo --managers 1 --workers 3" in out
        assert "Loaded image:" in out
        report = out[out.index("requests to "):]
        served = re.search(r"(\d+) served in [0-9.]+ s", report)
        assert served and int(served.group(1)) == 600, report
        assert "failed:" not in report, report
        nodes = report[report.index("per node:"):report.index(" served in")]
        assert all(f"worker{i}" in nodes for i in (1, 2, 3)), "the mesh spread the requests over every worker"
        assert "manager1" not in nodes, "the manager is drained: it runs no task"
        assert "The lab keeps running" in out
    finally:
        stop = demo(tmp_path, "stop")
    assert stop.returncode == 0, stop.stdout + stop.stderr
    left = subprocess.run([str(ROOT / ".venv" / "bin" / "shoal"), "lab", "ls"], capture_output=True, text=True,
                          env={**os.environ, "SHOAL_LAB_DIR": str(tmp_path / "labs")}, timeout=60)
    assert "demo" not in left.stdout, left.stdout
    assert not any(Path("/run/netns").glob("shoal-demo-*")), "the lab's namespaces are gone"
