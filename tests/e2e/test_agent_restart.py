"""Agent restart and liveness as a user sees them, with real processes and real containers.

kill -9 of the worker agent leaves its containers running (the runtime's launcher outlives it); the
restarted agent re-adopts them, so the tasks stay RUNNING with the same task ids and container pids.
Also checks the TCP control API with the admin certificate `shoal manager` writes, and join-token.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.e2e.clicluster import CliCluster, running_pids

QUICK_STOP = ("--stop-grace-period", "1s")
"""``sleep`` as a container's PID 1 ignores SIGTERM: without this every removal (and the cluster's teardown,
which stops the worker and its containers) waits the default 10 s for the SIGKILL."""


def _worker(c: CliCluster):
    return c.procs[1]


# a restarted Python agent can take seconds to reconnect on a loaded machine; the default 1 s grace and 3 s
# heartbeat expiry would rightly declare the node down and replace its tasks, which is not this test's subject
@pytest.mark.manager_args("--heartbeat-period", "5", "--reconnect-grace", "15")
def test_agent_kill9_restart_readopts_containers(cli_cluster: CliCluster):
    c = cli_cluster
    c.shoal("svc", "create", "--name", "sleepy", "--replicas", "2", "--constraint", "node.hostname==e2e-worker", *QUICK_STOP, "host", "sleep", "1000")
    before = c.wait_for(lambda: (p := running_pids(c, "sleepy")) and len(p) == 2 and p, what="2 running tasks")

    assert {t["Node"] for t in c.json("svc", "ps", "sleepy")} == {"e2e-worker"}, "the tasks run on the worker whose agent dies"
    w = _worker(c)
    os.kill(w.pid, signal.SIGKILL)
    w.wait()
    for pid in before.values():
        os.kill(pid, 0)  # still alive: raises if the container died with the agent
    args = ["worker", "--join", c.addr, "--token", c.token, "--data-dir", str(c.tmp / "w"), "--hostname", "e2e-worker"]
    c.start(*args, name="worker2")
    c.wait_for(lambda: c.shoal("node", "ls", check=False).stdout.count(" Ready ") == 2, what="worker back")
    after = c.wait_for(lambda: (p := running_pids(c, "sleepy")) and len(p) == 2 and p, what="tasks running after restart")
    assert after == before, "same tasks, same container pids: nothing was restarted"
    tasks = c.json("svc", "ps", "sleepy")
    assert len(tasks) == 2 and all(t["CurrentState"].startswith("Running") for t in tasks)
    c.shoal("svc", "rm", "sleepy")


def test_tcp_control_api_needs_the_admin_certificate(shared_cli_cluster: CliCluster):
    c = shared_cli_cluster
    certs = c.tmp / "m" / "certificates"
    env = {k: v for k, v in c.env.items() if k != "SHOAL_HOST"}
    import subprocess

    from tests.e2e.clicluster import SHOAL

    ok = subprocess.run([SHOAL, "-H", c.addr, "node", "ls"], env={**env, "SHOAL_CERT_PATH": str(certs)}, capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and ok.stdout.count(" Ready ") == 2, ok.stderr
    no = subprocess.run([SHOAL, "-H", c.addr, "node", "ls"], env={**env, "SHOAL_CERT_PATH": str(c.tmp)}, capture_output=True, text=True, timeout=30)
    assert no.returncode == 1 and no.stderr.startswith("Error: ") and "admin certificate" in no.stderr

    q = c.shoal("join-token", "-q", "worker").stdout.strip()
    assert q == c.token
    rotated = c.shoal("join-token", "--rotate", "worker").stdout
    assert "Successfully rotated worker join token." in rotated and c.token not in rotated
    assert f"shoal worker --join {c.addr} --token SHOAL-1-" in rotated


def test_health_check_runs_in_the_container(shared_cli_cluster: CliCluster):
    c = shared_cli_cluster
    c.shoal("svc", "create", "--name", "hc", *QUICK_STOP, "--health-cmd", "test -e /proc/1", "--health-interval", "200ms", "--health-start-interval", "200ms", "host", "sleep", "1000")
    c.wait_for(lambda: any(t["CurrentState"].endswith("(healthy)") for t in c.json("svc", "ps", "hc")), what="healthy task")
    c.shoal("svc", "rm", "hc")
    # -d: a task that never becomes healthy never converges (create waits for health, as the issue asks)
    c.shoal("svc", "create", "-d", "--name", "sick", *QUICK_STOP, "--health-cmd", "exit 1", "--health-interval", "200ms", "--health-retries", "1", "--restart-delay", "0s", "host", "sleep", "1000")
    # failed, then replaced per the restart policy (the old task's desired state becomes Shutdown)
    c.wait_for(
        lambda: [t for t in c.tasks("svc", "ps", "sick") if t["Error"] == "task: unhealthy container" and t["DesiredState"] == "Shutdown"],
        what="unhealthy task failed and replaced",
    )
    c.shoal("svc", "rm", "sick")


@pytest.mark.manager_args("--heartbeat-period", "5", "--reconnect-grace", "15")
def test_a_task_still_starting_when_its_agent_restarts_stays_starting_until_its_checks_pass(cli_cluster: CliCluster):
    """A task whose health check has not passed yet is STARTING (SwarmKit's rule). Its agent dies and comes
    back: the container is adopted (same pid), the task is not taken for RUNNING, its checks run again, and
    it becomes RUNNING only once one passes."""
    c = cli_cluster
    flag = c.tmp / "flag"
    flag.mkdir()
    c.shoal("svc", "create", "-d", "--name", "slow", "--constraint", "node.hostname==e2e-worker",
            "--mount", f"type=bind,source={flag},target=/mnt", "--health-cmd", "test -e /mnt/ok",
            "--health-interval", "300ms", "--health-start-interval", "300ms", "--health-retries", "1000",
            *QUICK_STOP, "host", "sleep", "1000")  # fmt: skip

    def starting() -> list[dict]:
        return [t for t in c.tasks("svc", "ps", "slow") if t["CurrentState"].startswith("Starting") and t["DesiredState"] == "Running"]

    (task,) = c.wait_for(starting, what="a started task waiting for its first healthy probe")
    before = c.wait_for(lambda: running_pids(c, "slow"), what="its container running")
    w = _worker(c)
    os.kill(w.pid, signal.SIGKILL)
    w.wait()
    args = ["worker", "--join", c.addr, "--token", c.token, "--data-dir", str(c.tmp / "w"), "--hostname", "e2e-worker"]
    c.start(*args, name="worker2")
    c.wait_for(lambda: c.shoal("node", "ls", check=False).stdout.count(" Ready ") == 2, what="worker back")
    c.wait_for(lambda: "re-adopted a running container" in (c.tmp / "worker2.log").read_text(), what="the task re-adopted")
    for _ in range(10):  # its checks still fail: it is not running, however long one looks
        (now,) = [t for t in c.tasks("svc", "ps", "slow") if t["DesiredState"] == "Running"]
        assert now["ID"] == task["ID"] and now["CurrentState"].startswith("Starting"), now
        time.sleep(0.3)
    (flag / "ok").touch()  # the re-started checks pass now
    c.wait_for(lambda: [t for t in c.tasks("svc", "ps", "slow") if t["CurrentState"].startswith("Running")
                        and t["CurrentState"].endswith("(healthy)")], what="healthy after its checks ran again")  # fmt: skip
    assert running_pids(c, "slow") == before, "the same container: adopted, not started again"
    c.shoal("svc", "rm", "slow")
