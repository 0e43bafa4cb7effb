"""Coalescing task status reports from agents into batched etcd writes.

Reports arrive per agent call; they are merged per task (the newest wins), checked to move forward
only, and written up to 128 per transaction. A report is written as soon as no write is under way:
the reports that arrive while one is (each agent call waits for its own) make the next batch, so the
batches grow with the load by themselves and a lone report (a task that became healthy, which a
rolling update waits for) is not held back by a timer. A report for a task that was deleted
meanwhile is dropped rather than leaving an orphan key.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import Counter

from shoal import log
from shoal.manager.cache import ClusterCache
from shoal.manager.store import objects
from shoal.manager.store.base import Store
from shoal.manager.store.writes import Writer
from shoal.proto import types_pb2 as pb
from shoal.retry import Backoff

_log = log.get(__name__)
WRITES = Counter("shoal_dispatcher_status_updates_total", "Task status updates written to the store")


class StatusWriter:
    def __init__(self, store: Store, cache: ClusterCache) -> None:
        self.store = store
        self.writer = Writer(store)
        self.cache = cache
        self.pending: dict[str, pb.TaskStatus] = {}
        self._kick = asyncio.Event()
        self._done = asyncio.Event()

    def submit(self, task_id: str, status: pb.TaskStatus) -> None:
        cur = self.pending.get(task_id)
        if cur is None or status.state >= cur.state:
            self.pending[task_id] = status
        self._kick.set()

    async def flushed(self) -> None:
        """Wait until what was submitted so far is written (or dropped)."""
        if not self.pending:
            return
        done = self._done
        await done.wait()

    async def run(self) -> None:
        failed = Backoff(0.05, 0.2)  # after a batch that could not be written (the store is failing over)
        while True:
            await self._kick.wait()
            await asyncio.sleep(0)  # the calls that came in with this one submit theirs too
            self._kick.clear()
            if not self.pending:
                continue
            batch, self.pending = self.pending, {}
            done, self._done = self._done, asyncio.Event()
            began = time.monotonic()
            try:
                await self._write(batch)
                failed.reset()
                _log.debug("statuses written", tasks=len(batch), took_s=round(time.monotonic() - began, 4))
            except Exception:
                _log.exception("status write failed; retrying", updates=len(batch))
                for tid, st in batch.items():
                    self.submit(tid, st)
                await failed.sleep()
            finally:
                done.set()

    async def _write(self, batch: dict[str, pb.TaskStatus]) -> None:
        items = []
        for tid, st in batch.items():
            t = self.cache.get("task", tid)
            if t is None or st.state < self.cache.status(t).state:
                continue  # deleted, or an older report than what is stored: state only moves forward
            items.append((tid, st))
        await self.writer.apply_each([objects.report(tid, st) for tid, st in items])  # a deleted task's report is dropped
        WRITES.inc(len(items))
