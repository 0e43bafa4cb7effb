"""``ListEvents`` of the control API: the events the leader recorded (``shoal events``).

Events live in etcd under their own folder, outside the cache (nobody reacts to them): a call reads
them with one range, oldest first (their ids sort by time), and keeps those in the asked window.
"""

from __future__ import annotations

import grpc

from shoal.manager.store import keys, objects
from shoal.manager.store.base import Store
from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb


def in_window(events: list[pb.Event], since_ns: int, until_ns: int) -> list[pb.Event]:
    """The events with ``since_ns <= time < until_ns`` (0: unbounded), oldest first (pure)."""
    kept = [e for e in events if e.time_ns >= since_ns and (not until_ns or e.time_ns < until_ns)]
    return sorted(kept, key=lambda e: (e.time_ns, e.id))


class EventsAPI:
    """A mixin of ControlAPI (which provides ``store``)."""

    store: Store

    async def ListEvents(self, request: cpb.ListEventsRequest, context: grpc.aio.ServicerContext) -> cpb.ListEventsResponse:
        rng = await self.store.range(keys.EVENTS)
        events = [objects.events.decode(kv.value) for kv in rng.kvs]
        return cpb.ListEventsResponse(events=in_window(events, request.since_ns, request.until_ns))
