"""Opt-in rebalancing as a user runs it: manager + worker processes, the CLI, real containers.

All tasks start on the manager while the worker is drained; when the worker is active again, the
service created with ``--rebalance`` spreads over both nodes and the other one stays put until
``svc update --rebalance`` turns it on.
"""

from __future__ import annotations

from collections import Counter

from tests.e2e.clicluster import CliCluster


def spread(c: CliCluster, service: str) -> Counter[str]:
    return Counter(t["Node"] for t in c.json("svc", "ps", service) if t["DesiredState"] == "Running" and t["CurrentState"].startswith("Running"))


def test_rebalance_moves_tasks_onto_a_node_that_comes_back(cli_cluster: CliCluster):
    c = cli_cluster
    c.shoal("node", "update", "--availability", "drain", "e2e-worker")
    c.shoal("svc", "create", "--name", "moving", "--replicas", "4", "--rebalance", "--update-parallelism", "2", "--stop-grace-period", "1s", "host", "sleep", "1000")
    c.shoal("svc", "create", "--name", "staying", "--replicas", "4", "--stop-grace-period", "1s", "host", "sleep", "1000")
    assert spread(c, "moving") == {"e2e-manager": 4} and spread(c, "staying") == {"e2e-manager": 4}
    staying = {t["ID"] for t in c.json("svc", "ps", "staying")}

    c.shoal("node", "update", "--availability", "active", "e2e-worker")
    c.wait_for(lambda: spread(c, "moving") == {"e2e-manager": 2, "e2e-worker": 2}, what="moving spread 2/2")
    assert {t["ID"] for t in c.json("svc", "ps", "staying")} == staying, "without --rebalance nothing moves"
    assert spread(c, "staying") == {"e2e-manager": 4}

    res = c.shoal("svc", "update", "--rebalance", "staying")
    assert res.stdout.splitlines()[0] == "staying"
    c.wait_for(lambda: spread(c, "staying") == {"e2e-manager": 2, "e2e-worker": 2}, what="staying spread 2/2")
    c.shoal("svc", "rm", "moving", "staying")
