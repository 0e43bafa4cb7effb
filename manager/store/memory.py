"""An in-memory Store with etcd's semantics, for unit tests of everything above the store.

Orchestrators, the scheduler loop and the dispatcher are tested against this instead of a real etcd, so
it must behave like etcd where they can tell: one global revision bumped once per write transaction,
per-key create/mod revision and version, compares on missing keys seeing zeros, leases whose expiry
deletes their keys (and is seen by watchers), and watches that replay history from a start revision or
raise Compacted. The contract tests in ``tests/integration/test_store_contract.py`` run the same cases
against both. Time is ``clock() + advance()``-ed offset, so lease tests need not sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from .base import (
    KV,
    MAX_TXN_OPS,
    Compacted,
    Compare,
    Delete,
    Event,
    LeaseNotFound,
    Op,
    Put,
    Range,
    Store,
    StoreError,
    TxnResult,
)

__all__ = ["MemoryStore"]

_CLOSED = object()  # queued to a watcher when the store closes


@dataclass
class _Entry:
    kv: KV
    version: int


@dataclass
class _Lease:
    ttl: float
    deadline: float
    keys: set[str] = field(default_factory=set)


def check_compare(c: Compare, entry: _Entry | None) -> bool:
    """Evaluate one compare the way etcd does; a missing key has zero revisions and version."""
    if c.target == "value":
        if entry is None:
            return False  # etcd: a value compare on a missing key is false
        left: int | bytes = entry.kv.value
    elif c.target == "mod":
        left = entry.kv.mod_revision if entry else 0
    elif c.target == "create":
        left = entry.kv.create_revision if entry else 0
    else:
        left = entry.version if entry else 0
    right = c.value
    if isinstance(left, bytes) != isinstance(right, bytes):
        raise TypeError(f"compare on {c.target} of {c.key!r} needs {'bytes' if isinstance(left, bytes) else 'int'}")
    return {"==": left == right, "!=": left != right, "<": left < right, ">": left > right}[c.op]  # type: ignore[operator]  # both sides of one compare are the same type (ints or bytes)


def check_ops(ops: Sequence[Op]) -> None:
    """Refuse what etcd refuses: too many ops, or two ops touching the same key."""
    if len(ops) > MAX_TXN_OPS:
        raise ValueError(f"a transaction takes at most {MAX_TXN_OPS} operations, got {len(ops)}")
    puts = [op.key for op in ops if isinstance(op, Put)]
    if len(set(puts)) != len(puts):
        raise StoreError("duplicate key given in txn request")
    for op in ops:
        if isinstance(op, Delete) and any(k == op.key or (op.prefix and k.startswith(op.key)) for k in puts):
            raise StoreError("duplicate key given in txn request")


class MemoryStore(Store):
    """The whole store in dicts; every method is synchronous underneath, so each txn is atomic."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, history: int = 100_000) -> None:
        self._clock = clock
        self._offset = 0.0
        self._data: dict[str, _Entry] = {}
        self._revision = 1  # a fresh etcd is at revision 1
        self._compacted = 0  # events before this revision are gone
        self._history: deque[Event] = deque()
        self._history_max = history
        self._leases: dict[int, _Lease] = {}
        self._lease_ids = itertools.count(0x1000)
        self._watchers: set[tuple[str, asyncio.Queue[object]]] = set()
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False

    # -- time and leases ---------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move this store's clock forward and expire the leases that ran out (for tests)."""
        self._offset += seconds
        self._expire()

    def _expire(self) -> None:
        now = self.now()
        for lease_id in [i for i, lease in self._leases.items() if lease.deadline <= now]:
            self._revoke(lease_id)

    def _revoke(self, lease_id: int) -> None:
        lease = self._leases.pop(lease_id, None)
        if lease is not None and lease.keys:
            self._apply([Delete(k) for k in sorted(lease.keys)])

    async def _reap(self) -> None:
        while self._leases and not self._closed:
            soonest = min(lease.deadline for lease in self._leases.values())
            await asyncio.sleep(min(max(soonest - self.now(), 0.01), 1.0))
            self._expire()

    def _ensure_reaper(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: expiry happens on access and on advance()
        if self._reaper is None or self._reaper.done() or self._reaper.get_loop() is not loop:
            self._reaper = loop.create_task(self._reap(), name="memory-store-lease-reaper")

    async def lease_grant(self, ttl: float) -> int:
        self._check_open()
        if ttl <= 0:
            raise ValueError(f"lease TTL must be positive, got {ttl}")
        lease_id = next(self._lease_ids)
        self._leases[lease_id] = _Lease(ttl, self.now() + ttl)
        self._ensure_reaper()
        return lease_id

    async def lease_refresh(self, lease_id: int) -> float:
        self._check_open()
        self._expire()
        lease = self._leases.get(lease_id)
        if lease is None:
            raise StoreError(f"lease {lease_id:x} expired or not found")
        lease.deadline = self.now() + lease.ttl
        return lease.ttl

    async def lease_revoke(self, lease_id: int) -> None:
        self._check_open()
        self._revoke(lease_id)

    # -- reads and writes --------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("store is closed")

    async def get(self, key: str) -> KV | None:
        self._check_open()
        self._expire()
        entry = self._data.get(key)
        return entry.kv if entry else None

    async def range(self, prefix: str) -> Range:
        self._check_open()
        self._expire()
        kvs = [self._data[k].kv for k in sorted(self._data) if k.startswith(prefix)]
        return Range(kvs, self._revision)

    def version(self, key: str) -> int:
        """How many times ``key`` was put since it was created (0 when missing), as etcd counts."""
        entry = self._data.get(key)
        return entry.version if entry else 0

    async def txn(self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> TxnResult:
        self._check_open()
        check_ops(success)
        check_ops(failure)
        self._expire()
        ok = all(self._holds(c) for c in compares)
        ops = success if ok else failure
        for op in ops:
            if isinstance(op, Put) and op.lease and op.lease not in self._leases:
                raise LeaseNotFound(f"requested lease not found: {op.lease:x}")
        self._apply(ops)
        return TxnResult(ok, self._revision)

    def _holds(self, c: Compare) -> bool:
        """One compare, on its key or (a prefix compare) on every key under it, as etcd evaluates it."""
        if not c.prefix:
            return check_compare(c, self._data.get(c.key))
        entries = [e for k, e in self._data.items() if k.startswith(c.key)]
        return all(check_compare(c, e) for e in entries) if entries else check_compare(c, None)

    def _apply(self, ops: Sequence[Op]) -> None:
        rev = self._revision + 1
        events: list[Event] = []
        for op in ops:
            if isinstance(op, Put):
                old = self._data.get(op.key)
                if old and old.kv.lease and old.kv.lease in self._leases:
                    self._leases[old.kv.lease].keys.discard(op.key)
                create = old.kv.create_revision if old else rev
                self._data[op.key] = _Entry(KV(op.key, op.value, rev, create, op.lease), old.version + 1 if old else 1)
                if op.lease:
                    self._leases[op.lease].keys.add(op.key)
                events.append(Event("put", op.key, op.value, rev))
            else:
                keys = sorted(k for k in self._data if k.startswith(op.key)) if op.prefix else [op.key]
                for key in keys:
                    old = self._data.pop(key, None)
                    if old is None:
                        continue
                    if old.kv.lease in self._leases:
                        self._leases[old.kv.lease].keys.discard(key)
                    events.append(Event("delete", key, None, rev))
        if not events:
            return  # etcd does not bump the revision for a txn that changed nothing
        self._revision = rev
        self._history.extend(events)
        while len(self._history) > self._history_max:
            self._compacted = self._history.popleft().mod_revision + 1
        for prefix, queue in self._watchers:
            batch = [e for e in events if e.key.startswith(prefix)]
            if batch:
                queue.put_nowait(batch)

    async def compact(self, revision: int) -> None:
        """Forget the history before ``revision``; a watch from earlier raises Compacted (like etcd)."""
        if revision > self._revision:
            raise StoreError(f"required revision {revision} is a future revision")
        self._compacted = max(self._compacted, revision)
        while self._history and self._history[0].mod_revision < self._compacted:
            self._history.popleft()

    # -- watches -----------------------------------------------------------------------------------

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        self._check_open()
        start = start_revision if start_revision > 0 else self._revision + 1
        return self._watch(prefix, start)

    async def _watch(self, prefix: str, start: int) -> AsyncIterator[list[Event]]:
        self._check_open()
        if start < self._compacted:
            raise Compacted(f"revision {start} was compacted (oldest kept: {self._compacted})")
        queue: asyncio.Queue[object] = asyncio.Queue()
        for _, batch in itertools.groupby(
            (e for e in self._history if e.mod_revision >= start and e.key.startswith(prefix)),
            key=lambda e: e.mod_revision,
        ):
            queue.put_nowait(list(batch))
        me = (prefix, queue)
        self._watchers.add(me)
        try:
            while True:
                item = await queue.get()
                if item is _CLOSED:
                    return
                yield item  # type: ignore[misc]  # the queue carries event lists and the end marker, checked above
        finally:
            self._watchers.discard(me)

    async def close(self) -> None:
        self._closed = True
        for _, queue in self._watchers:
            queue.put_nowait(_CLOSED)
        if self._reaper is not None and not self._reaper.done():
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):  # RuntimeError: its loop is gone
                self._reaper.cancel()
                await self._reaper

    def snapshot(self) -> dict[str, bytes]:
        """Every key and value, for assertions in tests."""
        return {k: e.kv.value for k, e in sorted(self._data.items())}
