"""Coalescing the agent's task status reports and sending them in batches over the session.

Each task's newest status wins; reports wait while there is no session and are sent as soon as one
exists, so a manager failover loses no transition that matters (the newest is what counts). A report
goes out as soon as no call is under way: a call returns once the manager has written its statuses,
and whatever was reported meanwhile goes out together in the next one, so bursts coalesce without a
timer holding back a lone report (a task that became healthy, which a rolling update waits for).
"""

from __future__ import annotations

import asyncio
import time

import grpc

from shoal import log
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import dispatcher_pb2_grpc as dgrpc
from shoal.proto import types_pb2 as pb
from shoal.retry import Backoff

_log = log.get(__name__)


RESEND_FIRST_S, RESEND_CAP_S = 0.05, 0.2
"""The pause after a failed send before the statuses go out again: the first one, and the longest."""


def keep_newest(pending: dict[str, pb.TaskStatus], task_id: str, status: pb.TaskStatus) -> None:
    """Coalesce: ``status`` replaces the queued one unless that one is further on (states only move forward)."""
    cur = pending.get(task_id)
    if cur is None or status.state >= cur.state:
        pending[task_id] = status


def requeue(pending: dict[str, pb.TaskStatus], batch: dict[str, pb.TaskStatus]) -> None:
    """Put a batch that failed to send back, behind anything reported since (which is newer)."""
    for tid, st in batch.items():
        cur = pending.get(tid)
        if cur is None or st.state > cur.state:
            pending[tid] = st


class Reporter:
    def __init__(self, interval: float = 0.0) -> None:
        self.interval = interval
        self.pending: dict[str, pb.TaskStatus] = {}
        self._stub: dgrpc.DispatcherStub | None = None
        self._node_id = ""
        self._session_id = ""
        self._kick = asyncio.Event()

    def report(self, task_id: str, status: pb.TaskStatus) -> None:
        """Queue ``status`` as the task's newest (a later report of the same state replaces it)."""
        keep_newest(self.pending, task_id, status)
        self._kick.set()

    def attach(self, stub: dgrpc.DispatcherStub, node_id: str, session_id: str) -> None:
        self._stub, self._node_id, self._session_id = stub, node_id, session_id
        self._kick.set()

    def detach(self) -> None:
        self._stub = None

    async def run(self) -> None:
        failed = Backoff(RESEND_FIRST_S, RESEND_CAP_S)
        while True:
            await self._kick.wait()
            self._kick.clear()
            await asyncio.sleep(self.interval)  # the transitions of this turn of the loop go together
            if self._stub is None or not self.pending:
                continue
            batch, self.pending = self.pending, {}
            req = dpb.UpdateTaskStatusRequest(node_id=self._node_id, session_id=self._session_id)
            for tid, st in batch.items():
                req.updates.add(task_id=tid, status=st)
            began = time.monotonic()
            try:
                await self._stub.UpdateTaskStatus(req, timeout=10)
                failed.reset()
                _log.debug("statuses reported", tasks=len(batch), took_s=round(time.monotonic() - began, 4))
            except grpc.aio.AioRpcError as exc:
                _log.warning("status report failed; will resend", code=exc.code().name, error=exc.details())
                requeue(self.pending, batch)
                await failed.sleep()
                self._kick.set()
