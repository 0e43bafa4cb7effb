"""`shoal lab up --managers 5` (a README claim, issue 12): five manager hosts, each with its etcd member, one
leader; the cluster keeps serving with two managers' hosts killed (etcd keeps its 3-of-5 quorum and a
new leader is elected if the old one was among them).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.lab_fixtures import running_lab

MANAGERS = [f"manager{i}" for i in range(1, 6)]

pytestmark = pytest.mark.timeout(900)


def test_five_managers_one_leader_and_the_cluster_survives_two_lost_hosts(tmp_path: Path):
    # six hosts, five etcd members forming one cluster: minutes on a loaded 2-core machine
    with running_lab(tmp_path, "m5", "--managers", "5", "--workers", "1", up_timeout=300) as lab:
        print(f"lab up (5 managers + 1 worker): {lab.up_seconds:.2f}s")
        nodes = {n["Hostname"]: n for n in lab.json("node", "ls")}
        assert {h: n["Status"] for h, n in nodes.items()} == dict.fromkeys([*MANAGERS, "worker1"], "Ready")
        assert sorted(nodes[m]["ManagerStatus"] for m in MANAGERS) == ["Leader", *["Reachable"] * 4]
        etcd = {r["Node"]: r["Etcd"] for r in json.loads(lab.run("lab", "ls", "--format", "json").stdout) if r["Lab"] == lab.name}
        assert all(etcd[m] == "running" for m in MANAGERS), etcd
        assert lab.etcd_tls_refusals() == [], "every etcd member trusts its peers' certificates"

        leader = next(m for m in MANAGERS if nodes[m]["ManagerStatus"] == "Leader")
        lost = [leader, next(m for m in MANAGERS if m != leader and m != "manager1")]
        for host in lost:
            assert "killed" in lab.lab("kill", host).stdout

        def new_leader() -> str | None:  # --lab talks to the first manager host whose daemon runs
            rows = lab.json("node", "ls")
            leaders = [n["Hostname"] for n in rows if n["ManagerStatus"] == "Leader"]
            return leaders[0] if leaders and leaders[0] not in lost else None

        chosen = lab.wait_for(new_leader, 60, "a new leader among the three managers left")
        assert chosen not in lost
        lab.shoal("svc", "create", "--name", "still", "--replicas", "1", "host", "sleep", "1000")
        lab.wait_for(lambda: [t["CurrentState"].split()[0] for t in lab.json("svc", "ps", "still")] == ["Running"],
                     60, "a new service running on the worker")
        assert [t["Node"] for t in lab.json("svc", "ps", "still")] == ["worker1"]
