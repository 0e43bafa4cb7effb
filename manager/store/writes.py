"""Writes as plain data, and the one place that applies them: fenced, batched, retried.

A ``Write`` is what one object's change needs in one transaction: the compares that must hold (the
object's mod_revision as it was read, an index key still free, the task it reports on still there)
and its puts and deletes. The typed per-kind API (``kinds.py``) builds them, so no component spells
out keys or compares. A ``Writer`` applies them; a leader's Writer carries the fence (the election
key's create_revision) and adds it to every transaction, so a deposed leader that still runs cannot
write. A write whose compares fail raises ``Conflict``: the caller re-reads and decides again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

from shoal import log
from shoal.retry import Backoff, retry

from .base import MAX_TXN_OPS, Compare, Op, Store, StoreError

__all__ = ["CommitClock", "Conflict", "Fence", "Write", "Writer", "commit_clock"]

_log = log.get(__name__)
PARALLEL = 8  # batches in flight at once (the etcd store has 8 threads)


class CommitClock:
    """How long the writes made in one context (a reactor's pass) waited on the store: the union of their
    transactions' times, so batches in flight together count once (see ``commit_clock``)."""

    def __init__(self) -> None:
        self.waited = 0.0
        self._in_flight = 0
        self._since = 0.0

    def begin(self) -> None:
        if self._in_flight == 0:
            self._since = time.monotonic()
        self._in_flight += 1

    def end(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self.waited += time.monotonic() - self._since


_clock: ContextVar[CommitClock | None] = ContextVar("shoal_commit_clock", default=None)


@contextlib.contextmanager
def commit_clock() -> Iterator[CommitClock]:
    """Time the store transactions made within (by this task and the tasks it starts): a pass's time
    minus its commits' is what it spent on the event loop."""
    clock = CommitClock()
    token = _clock.set(clock)
    try:
        yield clock
    finally:
        _clock.reset(token)


class Conflict(Exception):
    """A write's compares did not hold: what it depends on changed since it was read (or exists, or is gone)."""


@dataclass(frozen=True)
class Fence:
    """The leader's election key and the create_revision it won it at."""

    key: str
    create_revision: int

    def compare(self) -> Compare:
        return Compare(self.key, "create", "==", self.create_revision)


@dataclass(frozen=True)
class Write:
    """One object's change: every compare must hold for the ops to apply, all in one transaction."""

    compares: tuple[Compare, ...] = ()
    ops: tuple[Op, ...] = ()

    @property
    def size(self) -> int:
        """How much of a transaction's operation budget this write takes."""
        return max(len(self.compares), len(self.ops))

    @staticmethod
    def join(writes: Iterable[Write]) -> Write:
        """Several writes as one transaction: all of them apply, or none."""
        ws = list(writes)
        return Write(tuple(c for w in ws for c in w.compares), tuple(op for w in ws for op in w.ops))


class Writer:
    """Applies writes to ``store``; with a ``fence`` every transaction also compares the leader's key."""

    def __init__(self, store: Store, fence: Fence | None = None) -> None:
        self.store = store
        self.fence = fence

    @property
    def budget(self) -> int:
        """Operations left for writes in one transaction once the fence has its compare."""
        return MAX_TXN_OPS - (1 if self.fence else 0)

    def _compares(self, write: Write) -> list[Compare]:
        return [*write.compares, self.fence.compare()] if self.fence else list(write.compares)

    async def apply(self, write: Write) -> int:
        """Apply one write; returns the store revision after it. Raises Conflict when a compare fails."""
        clock = _clock.get()
        if clock is not None:
            clock.begin()
        try:
            res = await self.store.txn(self._compares(write), write.ops)
        finally:
            if clock is not None:
                clock.end()
        if not res.succeeded:
            raise Conflict("the object changed since it was read")
        return res.revision

    async def apply_batches(self, writes: Sequence[Write]) -> tuple[int, int]:
        """Apply many writes in transactions of up to the op budget; returns (applied writes, last revision).

        Batches are independent (each carries its own compares), so up to ``PARALLEL`` are in flight;
        a batch that lost a race applies nothing and is skipped: the caller re-reads and decides again.
        """
        sem = asyncio.Semaphore(PARALLEL)

        async def flush(batch: list[Write]) -> tuple[int, int]:
            async with sem:
                try:
                    return len(batch), await self.apply(Write.join(batch))
                except Conflict:
                    _log.info("transaction lost a race; will re-read", changes=len(batch))
                    return 0, 0

        results = await asyncio.gather(*(flush(b) for b in batches(writes, self.budget)))
        return sum(r[0] for r in results), max((r[1] for r in results), default=0)

    async def apply_each(self, writes: Sequence[Write]) -> int:
        """Apply writes batched; when a batch conflicts, apply its writes one by one and drop those that conflict.

        Returns the last revision written (0 when nothing was). For writes that are independent of each
        other, where one stale write must not hold back the rest (status reports of tasks, one deleted).
        """
        rev = 0
        for batch in batches(writes, self.budget):
            try:
                rev = max(rev, await self.apply(Write.join(batch)))
                continue
            except Conflict:
                pass
            for w in batch:
                try:
                    rev = max(rev, await self.apply(w))
                except Conflict:
                    continue
        return rev

    async def apply_retrying(self, write: Write, applied: Callable[[], Awaitable[int]], timeout: float = 8.0) -> int:
        """Apply a write, riding out a store failover (an etcd leader election, a lost member).

        A write that failed may still have been applied, so before each retry ``applied`` checks whether
        it is already there (returning its revision, or 0) instead of writing twice. Raises Conflict when
        the compares fail, StoreError when the store stays unreachable past ``timeout``.
        """
        tried = False

        async def attempt() -> int:
            nonlocal tried
            if tried:
                try:
                    rev = await applied()
                except StoreError:
                    rev = 0  # cannot tell yet: write again (the compares refuse a second copy)
                if rev:
                    return rev
            tried = True
            return await self.apply(write)

        def retrying(_exc: BaseException, wait: float) -> None:
            _log.warning("store write failed; retrying", retry_in_s=round(wait, 3))

        return await retry(attempt, Backoff(0.2, 2.0), retry_on=StoreError, timeout=timeout, on_retry=retrying)


def batches(writes: Iterable[Write], budget: int = MAX_TXN_OPS) -> list[list[Write]]:
    """Cut writes into groups whose compares and ops each fit one transaction (in order)."""
    out: list[list[Write]] = []
    batch: list[Write] = []
    used = 0
    for w in writes:
        if batch and used + w.size > budget:
            out.append(batch)
            batch, used = [], 0
        batch.append(w)
        used += w.size
    if batch:
        out.append(batch)
    return out
