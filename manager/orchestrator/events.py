"""The events the leader records when node liveness changes what it does (``shoal events``).

A person looking at a cluster after an incident wants to know what the leader decided and why: that it
saw more than half of the nodes go at once and held their tasks (mass disruption, see shoal.liveness),
that it released one node's tasks to be replaced, that the disruption ended, that a down node's tasks
are being replaced as usual. The orchestrator hands this module what its liveness view was before and
after a pass; this module says which events that makes. Pure: plain data in, ``pb.Event`` out; the
orchestrator writes them (fenced, with its pass) and etcd forgets them after ``EVENT_TTL_S``.
"""

from __future__ import annotations

import secrets

from shoal.proto import types_pb2 as pb

EVENT_TTL_S = 24 * 3600
"""How long etcd keeps an event (each batch rides on a lease of this TTL)."""


def event_id(time_ns: int) -> str:
    """Ids sort by time (the store lists events in key order), a random tail keeps them unique."""
    return f"{time_ns:020d}-{secrets.token_hex(4)}"


def new_event(time_ns: int, type_: str, action: str, actor: str, message: str, **attributes: str) -> pb.Event:
    return pb.Event(
        id=event_id(time_ns), time_ns=time_ns, type=type_, action=action, actor_id=actor, message=message,
        attributes=attributes,
    )  # fmt: skip


def liveness_events(
    note: str | None,
    disrupted: bool,
    released_before: set[str],
    released_after: set[str],
    hostnames: dict[str, str],
    time_ns: int,
) -> list[pb.Event]:
    """Events for one pass of the liveness rules (pure).

    ``note`` is what ``Liveness.observe`` returned (a disruption began or ended), ``disrupted`` whether
    one is on after the pass, and ``released_*`` the down nodes whose tasks may be replaced before and
    after it: a node newly among them has its tasks replaced from now on.
    """
    out: list[pb.Event] = []
    if note is not None:
        action = "disruption" if disrupted else "disruption-over"
        out.append(new_event(time_ns, "cluster", action, "", note))
    # one pass's events a nanosecond apart, in the order they were decided (ids and listings sort by time)
    for nid in sorted(released_after - released_before):
        host = hostnames.get(nid, "")
        if disrupted:
            msg = f"node {host or nid} is down: its tasks are replaced now (mass disruption: one node at a time)"
        else:
            msg = f"node {host or nid} is down: its tasks are replaced on other nodes"
        out.append(new_event(time_ns + len(out), "node", "down", nid, msg, hostname=host))
    return out
