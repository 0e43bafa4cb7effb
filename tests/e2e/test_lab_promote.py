"""`node promote` / `node demote` in a lab: a running worker becomes a manager in place, and back.

Three managers share the lab's etcd cluster (on the hosts' lab addresses, so a worker host reaches
it too). Promoting worker1 makes its own `shoal worker` process start a manager: `node ls` shows it
Reachable and its socket serves the control API. Demoting it stops that manager; MANAGER STATUS is
blank again and the node keeps running as a worker. The last manager cannot be demoted.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.lab_fixtures import running_lab


def test_promote_and_demote_a_running_worker(tmp_path: Path):
    if shutil.which("etcdctl") is None:
        pytest.skip(reason="etcdctl not found; run make setup (etcd-client)")
    with running_lab(tmp_path, "pr", "--managers", "3", "--workers", "1") as lab:
        assert lab.shoal("node", "promote", "worker1").stdout.strip() == "Node worker1 promoted to a manager in the cluster."

        def status(host: str) -> dict:
            return {n["Hostname"]: n for n in lab.json("node", "ls")}[host]

        w = lab.wait_for(lambda: (n := status("worker1"))["ManagerStatus"] == "Reachable" and n["Status"] == "Ready" and n, what="worker1 Reachable")
        node = next(n for n in lab.state()["nodes"] if n["name"] == "worker1")
        sock = Path(node["data_dir"]) / "manager.sock"
        served = lab.run("--host", f"unix://{sock}", "node", "ls", "--format", "json").stdout  # worker1's own manager answers
        assert w["ID"] in served and '"Leader"' in served

        assert lab.shoal("node", "demote", "worker1").stdout.strip() == "Node worker1 demoted to a worker in the cluster."
        lab.wait_for(lambda: (n := status("worker1"))["ManagerStatus"] == "" and n["Status"] == "Ready" and not sock.exists(), what="worker1 a worker again")

        for m in ("manager2", "manager3"):
            lab.shoal("node", "demote", m)
        refused = lab.shoal("node", "demote", "manager1", check=False)
        assert refused.returncode != 0 and "last manager" in refused.stderr
