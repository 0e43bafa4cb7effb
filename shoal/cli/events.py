"""``shoal events``: what the cluster's leader decided about lost nodes, as ``docker events`` shows it.

Lines are ``TIME TYPE ACTION ACTOR (key=value, ..., message=...)``, oldest first. Without ``--follow``
it prints what the managers keep (the last 24 hours) and returns; ``-f`` keeps polling for new events
until Ctrl-C. ``--since``/``--until`` take a duration back from now (``10m``), an RFC 3339 time or
Unix seconds, as docker's do; ``--filter type=node|cluster`` and ``--filter action=...`` narrow it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import click

from shoal import units
from shoal.cli import client
from shoal.cli.output import parse_filters
from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb

FOLLOW_POLL_S = 0.5
FILTERS = ("type", "action")


def parse_time(text: str, now: float | None = None) -> int:
    """``--since``/``--until``: ``10m`` (ago), ``2026-12-01T18:00:00Z`` or Unix seconds -> ns (pure)."""
    now = time.time() if now is None else now
    t = text.strip()
    try:
        return int(float(t) * 1e9)
    except ValueError:
        pass
    try:
        return int(now * 1e9) - units.parse_duration(t)
    except units.UnitError:
        pass
    try:
        when = dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r}: use a duration (10m), an RFC 3339 time or Unix seconds") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1e9)


def line(e: pb.Event) -> str:
    """One event as docker prints it (pure)."""
    stamp = dt.datetime.fromtimestamp(e.time_ns // 10**9, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    attrs = [f"{k}={v}" for k, v in sorted(e.attributes.items()) if v] + [f"message={e.message}"]
    actor = f" {e.actor_id}" if e.actor_id else ""
    return f"{stamp}.{e.time_ns % 10**9:09d}Z {e.type} {e.action}{actor} ({', '.join(attrs)})"


def record(e: pb.Event) -> dict[str, Any]:
    return {"Time": e.time_ns, "Type": e.type, "Action": e.action, "Actor": {"ID": e.actor_id, "Attributes": dict(e.attributes)}, "Message": e.message}


def matches(e: pb.Event, filters: dict[str, list[str]]) -> bool:
    return all(getattr(e, key) in values for key, values in filters.items())


@click.command("events")
@click.option("--since", default="", help="show events since this time (10m, RFC 3339, Unix seconds)")
@click.option("--until", default="", help="show events until this time")
@click.option("--filter", "filters", multiple=True, help="type=node|cluster, action=NAME")
@click.option("-f", "--follow", is_flag=True, help="keep printing new events until interrupted")
@click.option("--format", "fmt", default="", help="json: one JSON object per line")
def events_cmd(since: str, until: str, filters: tuple[str, ...], follow: bool, fmt: str) -> None:
    """Show the cluster's events (mass disruption, nodes whose tasks are replaced)."""
    wanted = parse_filters(filters, FILTERS)
    since_ns = parse_time(since) if since else 0
    until_ns = parse_time(until) if until else 0
    if fmt and fmt != "json":
        raise click.BadParameter("only json is supported", param_hint="--format")
    stub = client.stub()
    seen: set[str] = set()
    try:
        while True:
            resp = stub.ListEvents(cpb.ListEventsRequest(since_ns=since_ns, until_ns=until_ns))
            for e in resp.events:
                if e.id in seen or not matches(e, wanted):
                    continue
                seen.add(e.id)
                click.echo(json.dumps(record(e), separators=(",", ":")) if fmt == "json" else line(e))
                since_ns = max(since_ns, e.time_ns)
            if not follow or (until_ns and time.time_ns() >= until_ns):
                return
            time.sleep(FOLLOW_POLL_S)
    except KeyboardInterrupt:
        return
