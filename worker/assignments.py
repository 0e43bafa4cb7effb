"""What an assignment set from the manager asks of the agent, worked out on plain data.

The dispatcher sends a full set when a session starts (everything this node should hold; anything
else must stop) and incremental sets after it (tasks new or changed, task ids removed). ``diff``
turns one set into the controllers to start, the ones to hand a newer task version, and the ones to
remove, given the task ids the agent already holds.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb


@dataclass
class Changes:
    start: list[pb.Task] = field(default_factory=list)
    """Tasks the agent does not hold yet: a controller each."""
    update: list[pb.Task] = field(default_factory=list)
    """Newer versions of tasks it holds (the desired state may have changed)."""
    remove: list[str] = field(default_factory=list)
    """Ids of held tasks that left the node's assignments: stop and delete their containers."""


def diff(held: Collection[str], a: dpb.Assignments) -> Changes:
    """The changes ``a`` asks for, for an agent holding the task ids ``held``.

    A full set drops every held task it does not list; the ids a set names as removed go too (a
    removal wins over a listing in the same set). Each removal is named once and only for a held
    task; a task listed twice is started once and then updated.
    """
    out = Changes()
    listed = {t.id for t in a.updated}
    named = set(a.removed)
    gone = [tid for tid in held if tid not in listed] if a.full else []
    gone += [tid for tid in a.removed if tid in held]
    out.remove = list(dict.fromkeys(gone))
    known = set(held) - named
    for t in a.updated:
        if t.id in named:
            continue
        (out.update if t.id in known else out.start).append(t)
        known.add(t.id)
    return out
