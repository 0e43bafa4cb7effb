"""Service modes and node operations on the real runtime (issue 12): until now only the fake executor ran them.

A manager and a worker process (one ``shared_cli_cluster`` for the module; the tests that pause or remove a
node have a ``cli_cluster`` of their own), tasks as real containers on the ``host`` image, all
driven through the ``shoal`` CLI as a user would: global services, jobs, the restart policy, a paused
node, ``node rm --force`` and ``svc ps --why``. Each test checks the containers themselves (their
state files and exit codes), not only what the manager reports.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.e2e.clicluster import CliCluster, containers, running_pids, runtime_leftovers

NODES = {"e2e-manager", "e2e-worker"}
QUICK_STOP = ("--stop-grace-period", "1s")
"""``sleep`` as a container's PID 1 ignores SIGTERM: without this each removal (and the cluster's teardown)
waits the default 10 s for the SIGKILL."""
# a manager and a worker process start, converge and stop: minutes on a loaded 2-core machine
pytestmark = pytest.mark.timeout(300)


def tasks(c: CliCluster, service: str) -> list[dict]:
    """Full task ids (they are compared with the containers on disk, named by full id)."""
    return c.tasks("svc", "ps", service)


def states(c: CliCluster, service: str) -> list[str]:
    return sorted(t["CurrentState"].split()[0] for t in tasks(c, service))


def test_a_global_service_runs_one_container_on_every_node(shared_cli_cluster: CliCluster):
    c = shared_cli_cluster
    c.shoal("svc", "create", "-d", "--name", "everywhere", "--mode", "global", *QUICK_STOP, "host", "sleep", "1000")
    pids = c.wait_for(lambda: (p := running_pids(c, "everywhere")) and len(p) == 2 and p, what="one task per node")
    assert {t["Node"] for t in tasks(c, "everywhere")} == NODES
    assert len(set(pids.values())) == 2, "two containers, two processes"
    # `node ps NODE` (a README claim): each node lists its own task of the service, and only that one
    by_node = {t["Node"]: t["ID"] for t in tasks(c, "everywhere")}
    for node in NODES:
        rows = c.tasks("node", "ps", node)
        assert [r["ID"] for r in rows] == [by_node[node]] and rows[0]["Node"] == node, rows
        assert rows[0]["Name"].startswith("everywhere.") and rows[0]["CurrentState"].startswith("Running")
    both = c.tasks("node", "ps", *sorted(NODES))
    assert sorted(r["ID"] for r in both) == sorted(by_node.values()), "node ps takes several nodes"
    c.shoal("svc", "rm", "everywhere")
    c.wait_for(lambda: not any(cid in containers(c) and containers(c)[cid]["status"] == "running" for cid in pids),
               what="both containers stopped with the service")


def _out(tmp_path: Path) -> tuple[Path, str]:
    """A host directory of the test's own bound at /mnt in the tasks: each container leaves a line there
    (finished containers are deleted, so their own state files cannot tell afterwards that they ran)."""
    out = tmp_path / "out"
    out.mkdir()
    return out, f"type=bind,source={out},target=/mnt"


def test_a_replicated_job_runs_each_slot_to_completion_once(shared_cli_cluster: CliCluster, tmp_path: Path):
    c = shared_cli_cluster
    out, mount = _out(tmp_path)
    c.shoal("svc", "create", "-d", "--name", "batch", "--mode", "replicated-job", "--replicas", "3", "--max-concurrent", "2",
            "--mount", mount, "host", "sh", "-c", "echo ran >> /mnt/log")
    c.wait_for(lambda: states(c, "batch") == ["Complete"] * 3, timeout=60, what="3 completed job tasks")
    assert (out / "log").read_text() == "ran\n" * 3, "three real containers ran, once each"
    assert len(tasks(c, "batch")) == 3, "a completed job is not started again"
    c.shoal("svc", "rm", "batch")


def test_a_global_job_completes_once_on_every_node(shared_cli_cluster: CliCluster):
    c = shared_cli_cluster
    c.shoal("svc", "create", "-d", "--name", "setup", "--mode", "global-job", "host", "true")
    c.wait_for(lambda: states(c, "setup") == ["Complete"] * 2, timeout=60, what="a completed task per node")
    assert {t["Node"] for t in tasks(c, "setup")} == NODES
    c.shoal("svc", "rm", "setup")


def test_on_failure_restarts_a_failing_container_up_to_max_attempts(shared_cli_cluster: CliCluster, tmp_path: Path):
    c = shared_cli_cluster
    out, mount = _out(tmp_path)
    c.shoal("svc", "create", "-d", "--name", "crashy", "--restart-condition", "on-failure", "--restart-max-attempts", "2",
            "--restart-delay", "0s", "--mount", mount, "host", "sh", "-c", "echo try >> /mnt/tries; exit 3")
    c.wait_for(lambda: states(c, "crashy") == ["Failed"] * 3, timeout=60, what="the first try and 2 restarts, all failed")
    records = tasks(c, "crashy")
    assert all("3" in t["Error"] for t in records), [t["Error"] for t in records]
    assert (out / "tries").read_text() == "try\n" * 3, "three real containers, each exited 3"
    assert len(tasks(c, "crashy")) == 3, "no fourth attempt"
    c.shoal("svc", "rm", "crashy")


def test_restart_condition_none_leaves_an_exited_task_alone(shared_cli_cluster: CliCluster, tmp_path: Path):
    c = shared_cli_cluster
    out, mount = _out(tmp_path)
    c.shoal("svc", "create", "-d", "--name", "once", "--restart-condition", "none", "--mount", mount,
            "host", "sh", "-c", "echo once >> /mnt/runs")
    c.wait_for(lambda: states(c, "once") == ["Complete"], timeout=60, what="one completed task")
    assert len(tasks(c, "once")) == 1 and (out / "runs").read_text() == "once\n", "not started again"
    c.shoal("svc", "rm", "once")


def test_a_paused_node_keeps_its_containers_but_gets_no_new_ones(cli_cluster: CliCluster):
    c = cli_cluster
    c.shoal("svc", "create", "-d", "--name", "web", "--replicas", "2", *QUICK_STOP, "host", "sleep", "1000")
    before = c.wait_for(lambda: (p := running_pids(c, "web")) and len(p) == 2 and p, what="2 running tasks")
    on_worker = {t["ID"] for t in tasks(c, "web") if t["Node"] == "e2e-worker"}
    assert on_worker, "the spread put a task on the worker"
    c.shoal("node", "update", "--availability", "pause", "e2e-worker")
    c.shoal("svc", "scale", "-d", "web=4")
    c.wait_for(lambda: len(running_pids(c, "web")) == 4, what="4 running tasks")
    placed = {t["ID"]: t["Node"] for t in tasks(c, "web") if t["DesiredState"] == "Running"}
    assert {tid for tid, node in placed.items() if node == "e2e-worker"} == on_worker, "new tasks only on the active node"
    after = running_pids(c, "web")
    assert all(after[tid] == before[tid] for tid in before), "the paused node's containers kept running"
    c.shoal("node", "update", "--availability", "active", "e2e-worker")
    c.shoal("svc", "rm", "web")


def test_node_rm_needs_force_for_a_ready_node_and_its_tasks_move(cli_cluster: CliCluster):
    c = cli_cluster
    c.shoal("svc", "create", "-d", "--name", "moving", "--replicas", "2", *QUICK_STOP, "host", "sleep", "1000")
    c.wait_for(lambda: len(running_pids(c, "moving")) == 2, what="2 running tasks")
    on_worker = [t["ID"] for t in tasks(c, "moving") if t["Node"] == "e2e-worker"]
    assert on_worker, "the spread put a task on the worker"
    refused = c.shoal("node", "rm", "e2e-worker", check=False)
    assert refused.returncode != 0 and "use --force" in refused.stderr and refused.stderr.count("\n") == 1
    assert "e2e-worker" in c.shoal("node", "ls").stdout, "nothing was removed"
    c.shoal("node", "rm", "--force", "e2e-worker")
    assert "e2e-worker" not in c.shoal("node", "ls").stdout

    def all_on_manager() -> bool:
        live = [t for t in tasks(c, "moving") if t["DesiredState"] == "Running"]
        return len(live) == 2 and all(t["Node"] == "e2e-manager" for t in live) and len(running_pids(c, "moving")) == 2

    c.wait_for(all_on_manager, timeout=60, what="both tasks running on the manager node")
    # the removed node leaves the cluster on its own: it stops and deletes its containers, then exits with why
    worker = c.procs[1]
    c.wait_for(lambda: worker.poll() is not None, timeout=30, what="the removed worker's exit")
    last = (c.tmp / "worker.log").read_text().splitlines()[-1]  # the process' own error line, after its log
    assert worker.returncode == 1 and last.startswith("Error: session refused") and "was removed from the cluster" in last, last
    assert runtime_leftovers(c.tmp / "w" / "runtime", on_worker) == []
    c.shoal("svc", "rm", "moving")


def test_a_signal_while_a_removed_worker_stops_its_tasks_does_not_leave_them_running(cli_cluster: CliCluster):
    """``sleep`` ignores SIGTERM: the removed worker's stop waits out the grace, and a SIGTERM (a node shut
    down, a lab torn down) comes in meanwhile. One signal means a clean stop: the one under way finishes."""
    c = cli_cluster
    c.shoal("svc", "create", "-d", "--name", "slow", "--replicas", "2", "--stop-grace-period", "4s", "host", "sleep", "1000")
    c.wait_for(lambda: len(running_pids(c, "slow")) == 2, what="2 running tasks")
    on_worker = [t["ID"] for t in tasks(c, "slow") if t["Node"] == "e2e-worker"]
    assert on_worker, "the spread put a task on the worker"
    c.shoal("node", "rm", "--force", "e2e-worker")
    c.wait_for(lambda: "session refused" in (c.tmp / "worker.log").read_text(), what="the worker told it was removed")
    worker = c.procs[1]
    worker.send_signal(signal.SIGTERM)
    c.wait_for(lambda: worker.poll() is not None, timeout=30, what="the removed worker's exit")
    assert runtime_leftovers(c.tmp / "w" / "runtime", on_worker) == []
    c.shoal("svc", "rm", "slow")


@pytest.mark.parametrize(("flags", "reason"), [
    (("--constraint", "node.labels.zone==mars"), "node.labels.zone==mars"),
    (("--reserve-memory", "64g"), "memory"),
])  # fmt: skip
def test_svc_ps_why_says_why_a_task_has_no_node(shared_cli_cluster: CliCluster, flags, reason):
    c = shared_cli_cluster
    c.shoal("svc", "create", "-d", "--name", "stuck", "--replicas", "2", *flags, "host", "sleep", "1000")
    c.wait_for(lambda: states(c, "stuck") == ["Pending"] * 2, what="2 pending tasks")
    why = c.wait_for(lambda: (out := c.shoal("svc", "ps", "--why", "stuck").stdout) and reason in out and out,
                     what="the reason")
    assert "stuck.1" in why and "stuck.2" in why, why
    ids = {t["ID"] for t in tasks(c, "stuck")}
    assert not ids & set(containers(c)), "no container was made for a task without a node"
    c.shoal("svc", "rm", "stuck")


def test_a_worker_removed_while_it_was_down_stops_its_leftovers_when_it_comes_back(cli_cluster: CliCluster):
    """Its agent killed (containers keep running, to be re-adopted), the node removed meanwhile: at the next
    start the join is refused, and what the earlier run left is stopped and deleted, as a leave would."""
    c = cli_cluster
    c.shoal("svc", "create", "-d", "--name", "left", "--mode", "global", *QUICK_STOP, "host", "sleep", "1000")
    c.wait_for(lambda: len(running_pids(c, "left")) == 2, what="a task on each node")
    on_worker = [t["ID"] for t in tasks(c, "left") if t["Node"] == "e2e-worker"]
    c.procs[1].kill()  # kill -9 of the agent alone: its launcher and container stay
    c.procs[1].wait()
    assert runtime_leftovers(c.tmp / "w" / "runtime", on_worker), "the container outlived its agent"
    c.shoal("node", "rm", "--force", "e2e-worker")
    again = c.start("worker", "--join", c.addr, "--token", c.token, "--data-dir", str(c.tmp / "w"), "--hostname", "e2e-worker",
                    name="worker-again")
    c.wait_for(lambda: again.poll() is not None, timeout=30, what="the removed worker's exit")
    last = (c.tmp / "worker-again.log").read_text().splitlines()[-1]
    assert again.returncode == 1 and "was removed from the cluster" in last, last
    assert runtime_leftovers(c.tmp / "w" / "runtime", on_worker) == []
    c.shoal("svc", "rm", "left")
