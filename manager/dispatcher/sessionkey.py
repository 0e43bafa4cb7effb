"""Writing a node's session key: which manager holds the node's session, on that dispatcher's lease.

The write is retried at once on a store failure, for as long as the node's heartbeat limit. A failure
is a write cut short by the store's write timeout (an etcd leader lost while it was in flight) or the
lease expired under us (the dispatcher's keepalive re-grants it): the put is idempotent, so it is simply
sent again, on the lease as it is now. The first try waits only ``QUICK_SESSION_WRITE_S``: agents
re-attach to a manager just after another manager host died, often with the etcd raft leader on it,
and a write lost with that leader would hold the session (and the node's tasks) for the full deadline.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from shoal import log
from shoal.manager.store import objects
from shoal.manager.store.base import StoreError, write_deadline
from shoal.manager.store.writes import Writer
from shoal.proto import types_pb2 as pb
from shoal.retry import Backoff, retry

_log = log.get(__name__)
QUICK_SESSION_WRITE_S = 0.75  # a first session-key write not answered by then is sent again (with the store's own deadline)


async def write_session_key(
    writer: Writer, record: pb.NodeSession, lease: Callable[[], int], ended: Callable[[], bool], period: float, limit_s: float
) -> None:
    """Put ``record`` on the lease ``lease()`` names at each try, until done, ``ended()``, or ``limit_s`` passed."""

    def retrying(exc: BaseException, wait: float) -> None:
        _log.warning("session key not written; retrying", node=record.node_id, error=str(exc), retry_in_s=round(wait, 3))

    tries = [0]

    async def put() -> None:
        if ended():  # a session that ended meanwhile writes nothing more
            return
        tries[0] += 1
        with write_deadline(QUICK_SESSION_WRITE_S) if tries[0] == 1 else contextlib.nullcontext():
            await writer.apply(objects.sessions.put(record, lease=lease()))

    await retry(put, Backoff(0.05, period), retry_on=StoreError, timeout=limit_s, on_retry=retrying)
