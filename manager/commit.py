"""Turning decisions into etcd transactions: compare-and-swap on what was read, fenced by leadership.

Every write that depends on a read compares the object's mod_revision; every leader write also
compares the election key's create_revision, so a deposed leader that still runs cannot write.
Transactions are cut at etcd's 128-operation limit; a lost race fails its batch, and the caller
re-reads (the cache catches up) and decides again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from shoal import log
from shoal.manager import keys
from shoal.manager.cache import ClusterCache
from shoal.manager.orchestrator.types import Actions
from shoal.manager.store.base import MAX_TXN_OPS, Compare, Delete, Op, Put, Store
from shoal.proto import types_pb2 as pb

_log = log.get(__name__)
PARALLEL = 8  # transactions in flight at once (the etcd store has 8 threads)


@dataclass
class Fence:
    """The leader's election key and the create_revision it won it at."""

    key: str
    create_revision: int

    def compare(self) -> Compare:
        return Compare(self.key, "create", "==", self.create_revision)


@dataclass
class Change:
    """One object's write: compares plus ops that must go in the same transaction."""

    compares: list[Compare]
    ops: list[Op]


class Committer:
    def __init__(self, store: Store, cache: ClusterCache, fence: Fence | None) -> None:
        self.store = store
        self.cache = cache
        self.fence = fence

    async def commit(self, changes: Sequence[Change]) -> tuple[int, int]:
        """Apply changes in batches; returns (applied changes, last revision). Failed batches are skipped.

        Batches are independent (each carries its own compares), so up to ``PARALLEL`` are in flight.
        """
        batches: list[list[Change]] = []
        batch: list[Change] = []
        budget = MAX_TXN_OPS - (1 if self.fence else 0)
        used = 0
        for ch in changes:
            n = max(len(ch.compares), len(ch.ops))
            if batch and used + n > budget:
                batches.append(batch)
                batch, used = [], 0
            batch.append(ch)
            used += n
        if batch:
            batches.append(batch)
        sem = asyncio.Semaphore(PARALLEL)

        async def flush(b: list[Change]) -> tuple[int, int]:
            compares = [c for ch in b for c in ch.compares]
            if self.fence:
                compares.append(self.fence.compare())
            async with sem:
                res = await self.store.txn(compares, [op for ch in b for op in ch.ops])
            if res.succeeded:
                return len(b), res.revision
            _log.info("transaction lost a race; will re-read", changes=len(b))
            return 0, 0

        results = await asyncio.gather(*(flush(b) for b in batches))
        return sum(r[0] for r in results), max((r[1] for r in results), default=0)

    # ---- changes from orchestrator actions ----------------------------------------------------
    def task_update(self, task: pb.Task) -> Change:
        task.meta.updated_at_ns = time.time_ns()
        k = keys.key("task", task.id)
        return Change([Compare(k, "mod", "==", self.cache.rev("task", task.id))], [Put(k, keys.encode(task))])

    def actions_to_changes(self, acts: Actions) -> list[Change]:
        out: list[Change] = []
        for t in acts.create:
            k = keys.key("task", t.id)
            out.append(Change([Compare(k, "create", "==", 0)], [Put(k, keys.encode(t))]))
        for task_id, desired in acts.set_desired.items():
            cur = self.cache.get("task", task_id)
            if cur is None or cur.desired_state == desired:  # type: ignore[attr-defined]
                continue
            t = pb.Task()
            t.CopyFrom(cur)
            t.desired_state = desired
            if desired == pb.SHUTDOWN and t.status.state < pb.ASSIGNED and self.cache.status(t).state < pb.ASSIGNED:
                # never sent to a node: nobody else will ever end it, so the manager does
                t.status.state = pb.SHUTDOWN
                t.status.timestamp_ns = time.time_ns()
                t.status.message = "shut down before it was scheduled"
            out.append(self.task_update(t))
        for task_id in acts.delete:
            k = keys.key("task", task_id)
            out.append(
                Change(
                    [Compare(k, "mod", "==", self.cache.rev("task", task_id))],
                    [Delete(k), Delete(keys.key("status", task_id))],
                )
            )
        return out
