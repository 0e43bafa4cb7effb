"""``shoal events``: time arguments, docker's line format, filters, and the events ListEvents returns."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from shoal.cli import events
from shoal.cli.main import main
from shoal.manager.eventsapi import in_window
from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb

T0 = 1_764_612_000_000_000_000  # 2025-12-01T18:00:00Z


def ev(offset_s: float, type_: str = "node", action: str = "down", actor: str = "n1", **attrs: str) -> pb.Event:
    t = T0 + int(offset_s * 1e9)
    return pb.Event(id=f"{t:020d}-x", time_ns=t, type=type_, action=action, actor_id=actor, message=f"{action} at {offset_s}", attributes=attrs)


class Stub:
    def __init__(self, stored: list[pb.Event]) -> None:
        self.stored = stored
        self.requests: list[cpb.ListEventsRequest] = []

    def ListEvents(self, req: cpb.ListEventsRequest) -> cpb.ListEventsResponse:  # noqa: N802 - the gRPC name
        self.requests.append(req)
        return cpb.ListEventsResponse(events=in_window(self.stored, req.since_ns, req.until_ns))


def run(stub: Stub, *args: str):
    return CliRunner().invoke(main, ["events", *args], obj={"connect": lambda *a, **k: stub})


def test_times_are_durations_back_from_now_rfc3339_or_unix_seconds():
    now = T0 / 1e9
    assert events.parse_time("10m", now=now) == T0 - 600 * 10**9
    assert events.parse_time("2025-12-01T18:00:00Z", now=now) == T0
    assert events.parse_time("2025-12-01T18:00:00", now=now) == T0, "no zone: UTC"
    assert events.parse_time(str(T0 // 10**9), now=now) == T0
    with pytest.raises(click.BadParameter, match="'yesterday': use a duration"):
        events.parse_time("yesterday", now=now)


def test_a_line_is_docker_shaped():
    line = events.line(ev(1.5, hostname="w1"))
    assert line == "2025-12-01T18:00:01.500000000Z node down n1 (hostname=w1, message=down at 1.5)"
    assert events.line(ev(0, "cluster", "disruption", "")).startswith("2025-12-01T18:00:00.000000000Z cluster disruption (")


def test_the_window_keeps_since_inclusive_until_exclusive_oldest_first():
    stored = [ev(3), ev(1), ev(2)]
    assert [e.time_ns for e in in_window(stored, 0, 0)] == [T0 + 10**9, T0 + 2 * 10**9, T0 + 3 * 10**9]
    assert [e.time_ns for e in in_window(stored, T0 + 2 * 10**9, T0 + 3 * 10**9)] == [T0 + 2 * 10**9]


def test_the_command_lists_events_and_filters_them():
    stub = Stub([ev(1, "cluster", "disruption", ""), ev(2, "node", "down", "n7", hostname="w7"), ev(3, "cluster", "disruption-over", "")])
    r = run(stub)
    assert r.exit_code == 0, r.output
    assert [ln.split()[1:3] for ln in r.output.splitlines()] == [["cluster", "disruption"], ["node", "down"], ["cluster", "disruption-over"]]
    r = run(stub, "--filter", "type=node", "--format", "json")
    assert r.exit_code == 0, r.output
    (only,) = [json.loads(ln) for ln in r.output.splitlines()]
    assert only["Actor"] == {"ID": "n7", "Attributes": {"hostname": "w7"}} and only["Action"] == "down"
    r = run(stub, "--since", "2025-12-01T18:00:02Z")
    assert stub.requests[-1].since_ns == T0 + 2 * 10**9 and len(r.output.splitlines()) == 2


def test_bad_input_is_one_clear_error_before_any_call():
    stub = Stub([])
    r = run(stub, "--filter", "colour=red")
    assert r.exit_code == 2 and "invalid filter 'colour'" in r.output
    r = run(stub, "--format", "table")
    assert r.exit_code == 2 and "only json" in r.output
    assert stub.requests == []
