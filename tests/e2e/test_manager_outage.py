"""A manager outage does not reshuffle the cluster (a 1-manager, 3-worker lab, driven through the CLI).

The manager host is stopped for 60 s, long enough for every agent's reconnect backoff to reach its cap
and for the dispatcher's session lease to expire, then started again. The new leader finds no session
at all; it must count every node Unknown for a full grace, measured from when it can accept sessions,
and by then the agents are back: no task moves, no task restarts (same task ids, nodes and container
pids). Also: a service asking for 100,000,000 replicas is refused with one clear line, and nothing
is written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.e2e.lab_fixtures import LabCli, running_lab

OUTAGE_S = 60.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCli]:
    with running_lab(tmp_path_factory.mktemp("labs"), "out", "--workers", "3") as lab:
        yield lab


def container_pids(lab: LabCli) -> dict[str, int]:
    """Running containers on every lab host, by task id: their PID 1 as the runtime recorded it."""
    out = {}
    for f in lab.dir.glob("*/runtime/containers/*/state.json"):
        st = json.loads(f.read_text())
        if st.get("status") == "running":
            out[f.parent.name] = st["pid"]
    return out


def placement(lab: LabCli, service: str) -> dict[str, tuple[str, str]]:
    """Live tasks of ``service``: task id -> (node, current state word)."""
    return {t["ID"]: (t["Node"], t["CurrentState"].split()[0]) for t in lab.tasks("svc", "ps", service) if t["DesiredState"] == "Running"}


@pytest.mark.timeout(400)  # a 60 s outage plus up to 90 s + 60 s of waiting for the lab: over the suite's 120 s
def test_a_60s_manager_outage_moves_and_restarts_nothing(lab: LabCli):
    lab.shoal("svc", "create", "--name", "steady", "--replicas", "6", "--constraint", "node.role==worker", "host", "sleep", "100000")
    before = lab.wait_for(lambda: (p := placement(lab, "steady")) and len(p) == 6 and all(s == "Running" for _, s in p.values()) and p, timeout=90, what="6 running tasks")
    pids = {tid: pid for tid, pid in container_pids(lab).items() if tid in before}
    assert len(pids) == 6 and len({n for n, _ in before.values()}) == 3, f"spread over the 3 workers: {before}"

    lab.lab("stop", "manager1")
    time.sleep(OUTAGE_S)
    assert {tid: pid for tid, pid in container_pids(lab).items() if tid in before} == pids, "the workers kept running their tasks"
    lab.lab("start", "manager1")
    lab.wait_for(lambda: set(lab.node_status().values()) == {"Ready"}, timeout=60, what="every node Ready")
    time.sleep(6)  # past the new leader's grace (3 heartbeats + the reconnect grace): its decisions are made

    after = placement(lab, "steady")
    assert after == before, f"same tasks on the same nodes:\nbefore {before}\nafter  {after}"
    assert {tid: pid for tid, pid in container_pids(lab).items() if tid in before} == pids, "same container processes"
    history = lab.json("svc", "ps", "steady")
    assert len(history) == 6, f"no task was replaced: {[(t['ID'], t['Node'], t['DesiredState']) for t in history]}"
    lab.shoal("svc", "rm", "steady")


def test_a_huge_replica_count_is_refused_and_nothing_is_written(lab: LabCli):
    res = lab.shoal("svc", "create", "--name", "huge", "--replicas", "100000000", "host", "sleep", "1", check=False)
    assert res.returncode != 0
    assert "replicas: 100000000 is more than the 10000 replicas a service may have" in res.stderr
    assert "huge" not in lab.shoal("svc", "ls").stdout
    lab.shoal("svc", "create", "--detach", "--name", "small", "--replicas", "1", "host", "sleep", "100000")
    res = lab.shoal("svc", "scale", "small=100000000", check=False)
    assert res.returncode != 0 and "more than the 10000 replicas" in res.stderr, res.stderr
    assert [s["Replicas"].split("/")[1] for s in lab.json("svc", "ls") if s["Name"] == "small"] == ["1"], "the scale wrote nothing"
    lab.shoal("svc", "rm", "small")
