"""Health-check semantics (docker's): probe commands, start period, retries, intervals."""

from __future__ import annotations

import asyncio

from shoal.proto import types_pb2 as pb
from shoal.worker.health import HealthState, Policy, monitor, probe_args


def hc(**kw) -> pb.HealthCheck:
    return pb.HealthCheck(**kw)


def test_probe_args():
    assert probe_args(hc(test=["CMD-SHELL", "curl -f localhost || exit 1"])) == ["/bin/sh", "-c", "curl -f localhost || exit 1"]
    assert probe_args(hc(test=["CMD", "true", "x"])) == ["true", "x"]
    assert probe_args(hc(test=["NONE"])) is None
    assert probe_args(hc()) is None


def test_defaults_are_dockers():
    p = Policy.of(hc(test=["CMD", "true"]))
    assert (p.interval, p.timeout, p.start_period, p.start_interval, p.retries) == (30.0, 30.0, 0.0, 5.0, 3)


def test_retries_then_unhealthy_and_recovery():
    s = HealthState(Policy(1, 1, 0, 1, 3))
    assert s.status == pb.HEALTH_STARTING
    assert [s.observe(False, 10) for _ in range(3)] == [pb.HEALTH_STARTING, pb.HEALTH_STARTING, pb.HEALTH_UNHEALTHY]
    assert s.observe(True, 11) == pb.HEALTH_HEALTHY and s.failures == 0


def test_failures_in_start_period_do_not_count():
    s = HealthState(Policy(10, 1, 60, 2, 1))
    assert s.observe(False, 5) == pb.HEALTH_STARTING and s.failures == 0
    assert s.next_delay(5) == 2  # start interval while starting
    assert s.observe(True, 6) == pb.HEALTH_HEALTHY
    assert s.next_delay(7) == 10
    assert s.observe(False, 8) == pb.HEALTH_UNHEALTHY  # once healthy, the start period no longer shields


async def test_monitor_reports_changes_and_stops_when_unhealthy():
    results = iter([0, 1, 1])
    seen: list[int] = []

    async def run(args, timeout):
        return next(results), b"out"

    check = hc(test=["CMD", "probe"], interval_ns=1_000_000, start_interval_ns=1_000_000, retries=2)
    await asyncio.wait_for(monitor(check, run, lambda h, out: seen.append(h)), 2)
    assert seen == [pb.HEALTH_STARTING, pb.HEALTH_HEALTHY, pb.HEALTH_UNHEALTHY]


def test_svc_ps_shows_health_like_docker():
    from shoal.cli.service_views import task_records

    t = pb.Task(id="t" * 25, service_id="s", service_name="web", slot=1, desired_state=pb.RUNNING)
    t.status.state, t.status.timestamp_ns, t.status.health = pb.RUNNING, 95 * 10**9, pb.HEALTH_HEALTHY
    assert task_records([t], {}, now=100)[0]["CurrentState"] == "Running 5 seconds ago (healthy)"
    t.status.health = pb.HEALTH_STARTING
    assert task_records([t], {}, now=100)[0]["CurrentState"].endswith("ago (starting)")
    t.status.health = pb.HEALTH_NONE
    assert task_records([t], {}, now=100)[0]["CurrentState"] == "Running 5 seconds ago"


async def test_a_probe_that_times_out_counts_as_a_failure_and_says_so():
    seen: list[tuple[int, str]] = []

    async def run(args, timeout):
        raise TimeoutError

    check = hc(test=["CMD", "probe"], interval_ns=1_000_000, start_interval_ns=1_000_000, retries=2)
    await asyncio.wait_for(monitor(check, run, lambda h, out: seen.append((h, out))), 2)
    assert seen[-1] == (pb.HEALTH_UNHEALTHY, "health check timed out")


async def test_a_probe_into_a_vanished_container_counts_as_a_failure():
    seen: list[tuple[int, str]] = []

    async def run(args, timeout):
        raise RuntimeError("container t1 is not running")

    check = hc(test=["CMD-SHELL", "true"], interval_ns=1_000_000, start_interval_ns=1_000_000, retries=1)
    await asyncio.wait_for(monitor(check, run, lambda h, out: seen.append((h, out))), 2)
    assert seen[-1] == (pb.HEALTH_UNHEALTHY, "container t1 is not running")


async def test_no_check_means_no_probes():
    calls: list[list[str]] = []

    async def run(args, timeout):
        calls.append(args)
        return 0, b""

    await asyncio.wait_for(monitor(hc(test=["NONE"]), run, lambda h, out: calls.append(["changed"])), 1)
    assert calls == []


async def test_probes_get_the_checks_command_and_timeout():
    got: list[tuple[list[str], float]] = []

    async def run(args, timeout):
        got.append((args, timeout))
        return 1, b"down"

    check = hc(test=["CMD-SHELL", "wget -q localhost"], interval_ns=1_000_000, start_interval_ns=1_000_000, timeout_ns=2_000_000_000, retries=1)
    await asyncio.wait_for(monitor(check, run, lambda h, out: None), 2)
    assert got == [(["/bin/sh", "-c", "wget -q localhost"], 2.0)]


def test_a_bare_test_string_runs_in_a_shell():
    assert probe_args(hc(test=["curl", "-f", "localhost"])) == ["/bin/sh", "-c", "curl -f localhost"]
    assert probe_args(hc(test=["CMD"])) is None
