"""Rolling updates and rollbacks on a lab, through the CLI as a user runs them.

A lab of one drained manager and two workers runs ``roll``: 4 replicas of the demo image (busybox
httpd) published on port 8095, with a health check that fetches its own page. A client on this
machine polls the published port of the manager's host (the routing mesh: that host runs no task)
while a start-first update replaces every task; not one request may fail. Then: an update whose
health check cannot pass rolls back by itself with the reason shown; a failing update pauses, and
a corrected ``svc update`` continues it; ``--force`` replaces every task; bad input is one error and
writes nothing. A second lab (3 managers) kills the leader's host mid-update: the new leader resumes it.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator

import pytest

from tests.e2e import netlab
from tests.e2e.lab_fixtures import LabCli, running_lab

pytestmark = pytest.mark.skipif(
    subprocess.run(["which", "nft"], capture_output=True).returncode != 0, reason="needs nft (nftables)"
)

HEALTH = ["--health-cmd", "wget -q -O /dev/null http://127.0.0.1/cgi-bin/whoami", "--health-interval", "1s",
          "--health-start-interval", "200ms", "--health-start-period", "20s", "--health-retries", "2"]  # fmt: skip


def update(lab: LabCli, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``svc update`` waiting for the rolling update as docker does (its own timeout is generous)."""
    return lab.run("--lab", lab.name, "svc", "update", *args, check=check, timeout=240)


def inspect(lab: LabCli, service: str) -> dict:
    (svc,) = json.loads(lab.shoal("svc", "inspect", service).stdout)
    return svc


def live_ids(lab: LabCli, service: str) -> dict[str, str]:
    return {t["ID"]: t["Name"] for t in netlab.running_tasks(lab, service)}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCli]:
    tmp = tmp_path_factory.mktemp("updlab")
    with running_lab(tmp / "labs", "upd", "--workers", "2") as lab:
        netlab.load_demo_image(lab, tmp)
        lab.run("--lab", lab.name, "svc", "create", "--name", "roll", "--replicas", "4", "-p", "8095:80", "--stop-grace-period", "2s",
                *HEALTH, "shoal-demo-lb", timeout=180)  # fmt: skip
        netlab.wait_running(lab, "roll", 4)
        yield lab


class Poller(threading.Thread):
    """Requests to a published port, one after another, until stopped; keeps every answer."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(daemon=True)
        self.host, self.port = host, port
        self.answers: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.answers += netlab.get_here(self.host, self.port, 10)


def addr(lab: LabCli, node: str) -> str:
    return next(n["addr"] for n in lab.state()["nodes"] if n["name"] == node)


def test_a_start_first_update_with_a_health_check_fails_no_request_through_the_mesh(lab: LabCli) -> None:
    before = live_ids(lab, "roll")
    poller = Poller(addr(lab, "manager1"), 8095)
    lab.wait_for(
        lambda: set(netlab.served_by(netlab.get_here(poller.host, 8095, 20))) == set(before.values()),
        30,
        "all 4 served",
    )
    poller.start()
    res = update(
        lab,
        "--env-add",
        "VERSION=2",
        "--update-order",
        "start-first",
        "--update-parallelism",
        "2",
        "--update-monitor",
        "1s",
        "roll",
    )
    poller.stop.set()
    poller.join(30)
    assert "verify: Service converged" in res.stdout, res.stdout
    failed = [a for a in poller.answers if a.startswith("error")]
    print(f"{len(poller.answers)} requests through the mesh during the update, {len(failed)} failed")
    assert len(poller.answers) > 50 and not failed, failed[:5]
    after = live_ids(lab, "roll")
    assert sorted(after.values()) == sorted(before.values()) == [f"roll.{i}" for i in range(1, 5)], (
        "slots keep their numbers"
    )
    assert not set(after) & set(before), "every task was replaced"
    status = inspect(lab, "roll")["UpdateStatus"]
    assert (
        status["State"] == "completed"
        and status["Message"] == "update completed"
        and status["CompletedAt"] >= status["StartedAt"]
    )


def test_an_update_whose_health_check_fails_rolls_back_by_itself_with_the_reason(lab: LabCli) -> None:
    before = live_ids(lab, "roll")
    res = update(
        lab,
        "--health-cmd",
        "test -e /nope",
        "--health-start-period",
        "0s",
        "--update-failure-action",
        "rollback",
        "roll",
        check=False,
    )
    assert res.returncode == 1, res.stdout + res.stderr
    assert (
        "service rolled back: rollback completed; update rolled back due to failure or early termination of task"
        in res.stderr
    )
    assert res.stderr.strip().endswith("task: unhealthy container"), "the reason is shown"
    svc = inspect(lab, "roll")
    assert svc["UpdateStatus"]["State"] == "rollback_completed"
    health = svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Healthcheck"]
    assert health["Test"][1].startswith("wget"), "the previous health check is back"
    pretty = lab.shoal("svc", "inspect", "--pretty", "roll").stdout
    assert "UpdateStatus:" in pretty and "rollback_completed" in pretty
    netlab.wait_running(lab, "roll", 4)
    assert len(set(live_ids(lab, "roll")) & set(before)) >= 3, "only what the update touched was replaced"


def test_a_failing_update_pauses_and_a_corrected_update_continues(lab: LabCli) -> None:
    before = live_ids(lab, "roll")
    res = update(
        lab,
        "--health-cmd",
        "false",
        "--health-start-period",
        "0s",
        "--update-parallelism",
        "1",
        "--update-failure-action",
        "pause",
        "roll",
        check=False,
    )
    assert (
        res.returncode == 1
        and "service update paused: update paused due to failure or early termination of task" in res.stderr
    ), res.stderr
    assert "task: unhealthy container" in res.stderr
    assert inspect(lab, "roll")["UpdateStatus"]["State"] == "paused"
    assert len(set(live_ids(lab, "roll")) & set(before)) >= 3, "a paused update replaces nothing more"
    res = update(lab, *HEALTH[:2], "--health-start-period", "20s", "roll")
    assert "verify: Service converged" in res.stdout
    # completed; or nothing was left to replace (the failed slot restarted on the corrected spec): no update ran
    assert inspect(lab, "roll").get("UpdateStatus", {"State": "completed"})["State"] == "completed"
    assert len(netlab.running_tasks(lab, "roll")) == 4


def test_force_replaces_every_task_without_a_change(lab: LabCli) -> None:
    before = live_ids(lab, "roll")
    spec = inspect(lab, "roll")["Spec"]
    res = update(lab, "--force", "--update-parallelism", "0", "roll")
    assert "verify: Service converged" in res.stdout
    assert not set(live_ids(lab, "roll")) & set(before)
    after = inspect(lab, "roll")["Spec"]
    forced = after["TaskTemplate"].pop("ForceUpdate")
    assert forced == spec["TaskTemplate"].pop("ForceUpdate") + 1
    after["UpdateConfig"]["Parallelism"] = spec["UpdateConfig"]["Parallelism"]
    assert after == spec, "nothing else changed"


def test_bad_update_input_is_one_error_and_writes_nothing(lab: LabCli) -> None:
    lab.shoal("svc", "create", "-d", "--name", "batch", "--mode", "replicated-job", "shoal-demo-lb", "true")
    version = {s: inspect(lab, s)["Version"]["Index"] for s in ("roll", "batch")}
    cases = [
        (("--rebalance", "batch"), "rebalance can only be used with replicated mode"),
        (("--update-parallelism", "2", "batch"), "--update-parallelism cannot be used with a job"),
        (("--rollback", "--env-add", "A=1", "roll"), "--rollback cannot be combined with --env-add"),
        (("--update-order", "sideways", "roll"), "sideways"),
        (("--limit-memory", "1KB", "roll"), "resources.limits.memory: must be at least 6MiB"),
    ]
    for argv, named in cases:
        res = update(lab, "-d", *argv, check=False)
        assert res.returncode != 0 and named in res.stderr, (argv, res.stderr)
    assert {s: inspect(lab, s)["Version"]["Index"] for s in version} == version
    lab.shoal("svc", "rm", "batch")


def test_a_leader_failover_mid_update_resumes_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with running_lab(tmp_path / "labs", "updf", "--managers", "3", "--workers", "2") as lab:
        lab.run("--lab", lab.name, "svc", "create", "--name", "slow", "--replicas", "4", "--stop-grace-period", "1s",
                "host", "sleep", "1000", timeout=120)  # fmt: skip
        before = set(live_ids(lab, "slow"))
        update(lab, "-d", "--env-add", "V=2", "--update-parallelism", "1", "--update-delay", "3s", "slow")
        lab.wait_for(lambda: len(before - set(live_ids(lab, "slow"))) >= 1, 60, "the first task replaced")
        leader = next(n["Hostname"] for n in lab.json("node", "ls") if n["ManagerStatus"] == "Leader")
        lab.lab("kill", leader)

        def resumed() -> bool:
            res = lab.shoal("svc", "inspect", "slow", check=False)
            return (
                res.returncode == 0
                and json.loads(res.stdout)[0].get("UpdateStatus", {}).get("State") == "completed"
            )

        lab.wait_for(resumed, 120, "the update completed under the new leader")
        assert not before & set(live_ids(lab, "slow")) and len(live_ids(lab, "slow")) == 4
