"""A lab with three managers: one etcd member per manager host, the managers sharing that cluster."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.lab_fixtures import running_lab


def test_three_managers_share_an_etcd_cluster_of_their_hosts(tmp_path: Path):
    if shutil.which("etcdctl") is None:
        pytest.skip(reason="etcdctl not found; run make setup (etcd-client)")
    with running_lab(tmp_path, "m3", "--managers", "3", "--workers", "1") as lab:
        print(f"lab up (3 managers + 1 worker): {lab.up_seconds:.2f}s")
        nodes = {n["Hostname"]: n for n in lab.json("node", "ls")}
        assert {h: n["Status"] for h, n in nodes.items()} == dict.fromkeys(["manager1", "manager2", "manager3", "worker1"], "Ready")
        managers = [nodes[m] for m in ("manager1", "manager2", "manager3")]
        assert sorted(m["ManagerStatus"] for m in managers) == ["Leader", "Reachable", "Reachable"]
        assert {m["Availability"] for m in managers} == {"Drain"}, "lab managers are drained by default"
        assert lab.etcd_tls_refusals() == [], "every etcd member trusts its peers' certificates"

        addrs = {n["name"]: n["addr"] for n in lab.state()["nodes"]}
        tls_dir = f"{lab.state()['dir']}/etcd-tls"
        ctl = ["etcdctl", "--cacert", f"{tls_dir}/ca.crt", "--cert", f"{tls_dir}/managers.crt", "--key", f"{tls_dir}/managers.key"]
        members = lab.lab("exec", "manager2", "--", *ctl, "--endpoints", "https://127.0.0.1:2379", "member", "list", "-w", "json").stdout
        peers = sorted(u for m in json.loads(members)["members"] for u in m["peerURLs"])
        assert peers == sorted(f"https://{addrs[m]}:2380" for m in ("manager1", "manager2", "manager3"))
        # a worker host on the same bridge cannot read etcd: no plain HTTP, and TLS needs a certificate of etcd's CA
        for url, extra in ((f"http://{addrs['manager1']}:2379", []), (f"https://{addrs['manager1']}:2379", ["--insecure-skip-tls-verify"])):
            snoop = lab.lab("exec", "worker1", "--", "etcdctl", "--dial-timeout", "2s", "--command-timeout", "3s", *extra, "--endpoints", url, "get", "/shoal", "--prefix", check=False)
            assert snoop.returncode != 0 and "/shoal/v1/" not in snoop.stdout, snoop.stdout

        # one member down: the cluster keeps its quorum and the managers keep serving
        assert "killed" in lab.lab("kill-etcd", "manager3").stdout
        etcd = {r["Node"]: r["Etcd"] for r in json.loads(lab.run("lab", "ls", "--format", "json").stdout) if r["Lab"] == lab.name}
        assert etcd == {"manager1": "running", "manager2": "running", "manager3": "stopped", "worker1": "-"}
        lab.shoal("svc", "create", "--name", "one", "--replicas", "1", "host", "sleep", "1000")
        assert [t["Node"] for t in lab.json("svc", "ps", "one")] == ["worker1"]
        lab.lab("start-etcd", "manager3")
        health = ("exec", "manager1", "--", *ctl, "--endpoints", f"https://{addrs['manager3']}:2379", "endpoint", "health")
        lab.wait_for(lambda: lab.lab(*health, check=False).returncode == 0, what="manager3's etcd member healthy again")
