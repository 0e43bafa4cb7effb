"""``svc logs`` after a worker's agent is killed -9 while its tasks end and are replaced (issue 13).

A node keeps an ended task's log past its container while the manager keeps the task in the history.
An agent killed between a task's end (the manager heard it) and its container's deletion left that
container to its next run, whose first full assignment set deleted it with the log. Here the agent of a
lab worker is killed and started again several times while a dozen short tasks end and restart; a kill
lands in that window only now and then (the unit tests in test_task_history_logs.py hit it every time),
but whatever moment it lands at, every task that ran to completion must show its line, and the kept logs
must go with the service as always.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.lab_fixtures import LabCli, running_lab

KILLS = 6


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCli]:
    with running_lab(tmp_path_factory.mktemp("labs"), "akl", "--workers", "1") as lab:
        yield lab


def kept_logs(lab: LabCli) -> set[str]:
    """The task ids whose logs the worker keeps past their containers (worker/logkeep.py)."""
    (node,) = [n for n in lab.state()["nodes"] if n["role"] == "worker"]
    d = Path(node["data_dir"]) / "runtime" / "kept-logs"
    return set(os.listdir(d)) if d.is_dir() else set()


def test_every_task_that_completed_shows_its_lines_whenever_its_agent_was_killed(lab: LabCli):
    lab.shoal("svc", "create", "-d", "--name", "churn", "--replicas", "12", "--constraint", "node.role==worker",
              "--restart-delay", "0s", "--restart-max-attempts", "5", "--stop-grace-period", "1s",
              "host", "sh", "-c", "echo hello-$SHOAL_TASK_ID; sleep 1")  # fmt: skip
    rng = random.Random()
    for _ in range(KILLS):
        time.sleep(rng.uniform(0.8, 1.6))
        lab.lab("kill", "worker1", "--agent-only")
        lab.lab("start", "worker1")
    lab.wait_for(lambda: all(t["DesiredState"] != "Running" for t in lab.json("svc", "ps", "churn")), timeout=90,
                 what="every slot done (its restart attempts used up)")  # fmt: skip
    tasks = lab.tasks("svc", "ps", "churn")
    done = [t["ID"] for t in tasks if t["CurrentState"].startswith("Complete")]
    assert len(done) >= 12, tasks
    lines = lab.shoal("svc", "logs", "--raw", "churn").stdout.split()
    assert not [tid for tid in done if f"hello-{tid}" not in lines], f"completed tasks without their lines:\n{tasks}"
    assert lab.shoal("svc", "logs", "--raw", done[0]).stdout.split() == [f"hello-{done[0]}"]
    lab.wait_for(lambda: kept_logs(lab) >= set(done), what="the completed tasks' logs kept past their containers")
    lab.shoal("svc", "rm", "churn")
    lab.wait_for(lambda: not kept_logs(lab), what="the kept logs deleted with the service")
