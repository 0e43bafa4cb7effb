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
