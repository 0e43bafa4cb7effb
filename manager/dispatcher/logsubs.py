"""Which live ``svc logs`` subscriptions a node is sent on its session stream.

A node is sent a subscription when one of the tasks placed on it is covered (a task of one of the
subscription's services, or a task it names), so a node running nothing of the service hears nothing,
and a node that is given such a task later (``-f`` follows tasks that start later) hears it on the
next session message. The set goes down whole whenever it changes, and on every new session, so a
node that reconnects to any manager picks its subscriptions up again. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable

from shoal.proto import logs_pb2 as lpb
from shoal.proto import types_pb2 as pb


def for_node(tasks: Iterable[pb.Task], subs: Iterable[lpb.LogSubscription]) -> list[lpb.LogSubscription]:
    """The subscriptions covering at least one of ``tasks`` (a node's tasks), sorted by id."""
    tasks = list(tasks)
    services = {t.service_id for t in tasks}
    task_ids = {t.id for t in tasks}
    return sorted(
        (s for s in subs if services.intersection(s.service_ids) or task_ids.intersection(s.task_ids)),
        key=lambda s: s.id,
    )


class SentSubscriptions:
    """What one session was last sent, so a message carries the set only when it changed."""

    def __init__(self) -> None:
        self.ids: tuple[str, ...] | None = None

    def diff(self, current: list[lpb.LogSubscription], full: bool) -> lpb.LogSubscriptions | None:
        ids = tuple(s.id for s in current)
        if not full and ids == self.ids:
            return None
        self.ids = ids
        return lpb.LogSubscriptions(subscriptions=current)
