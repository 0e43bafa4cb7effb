"""The store interface every manager component talks through.

etcd is the source of truth; this interface is the only way the rest of the manager sees it, so the
etcd client's quirks stay in ``etcd.py`` and unit tests run on ``MemoryStore`` with the same semantics:
revisions, compare-and-swap transactions, leases and watches from a revision. Components do not build
transactions themselves: they write through the typed per-kind API (``objects.py``, on ``kinds.py``),
applied by a ``Writer`` (``writes.py``) that adds the leader's fence.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

MAX_TXN_OPS = 128  # etcd's default --max-txn-ops
WRITE_DEADLINE: ContextVar[float | None] = ContextVar("shoal_store_write_deadline", default=None)


@contextlib.contextmanager
def write_deadline(seconds: float) -> Iterator[None]:
    """Writes made inside wait at most ``seconds`` (when shorter than the store's own write deadline).

    For a write that is cheap to send again and costly to wait for: a write that reached an etcd member
    just as its raft leader died is lost and only fails at its deadline (see etcd.EtcdStore). A store
    without deadlines (the in-memory one) ignores it.
    """
    token = WRITE_DEADLINE.set(seconds)
    try:
        yield
    finally:
        WRITE_DEADLINE.reset(token)


class StoreError(Exception):
    """The store could not be reached or refused the request."""


class LeaseNotFound(StoreError):
    """A write named a lease that is gone: it expired (or was revoked) before the write arrived, e.g. when
    the writer stalled for longer than the lease's TTL between granting it and using it."""


class Compacted(StoreError):
    """A watch asked for a revision that was compacted away: re-list, then watch from the new revision."""


@dataclass(frozen=True)
class KV:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int
    lease: int = 0


@dataclass(frozen=True)
class Event:
    type: Literal["put", "delete"]
    key: str
    value: bytes | None  # None for deletes
    mod_revision: int


@dataclass(frozen=True)
class Compare:
    """``target`` of ``key`` ``op`` ``value``. A missing key has mod/create revision 0 and version 0.

    With ``prefix``, every key under ``key`` must satisfy it (etcd's range compare); an empty range
    compares as one missing key. ``Compare(folder, "mod", "<", rev + 1, prefix=True)``: nothing under
    ``folder`` was created or changed after revision ``rev``."""

    key: str
    target: Literal["mod", "create", "version", "value"]
    op: Literal["==", "!=", "<", ">"]
    value: int | bytes
    prefix: bool = False


@dataclass(frozen=True)
class Put:
    key: str
    value: bytes
    lease: int = 0


@dataclass(frozen=True)
class Delete:
    key: str
    prefix: bool = False


Op = Put | Delete


@dataclass(frozen=True)
class TxnResult:
    succeeded: bool
    revision: int  # the store revision after the transaction (or at its evaluation when it failed)


@dataclass
class Range:
    kvs: list[KV] = field(default_factory=list)
    revision: int = 0  # the revision the range was read at; watch from revision + 1


class Store(abc.ABC):
    """Async key-value store with etcd semantics. Keys are str, values bytes."""

    @abc.abstractmethod
    async def get(self, key: str) -> KV | None: ...

    @abc.abstractmethod
    async def range(self, prefix: str) -> Range:
        """Every key starting with ``prefix``, sorted by key, and the revision they were read at."""

    @abc.abstractmethod
    async def txn(self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> TxnResult:
        """Apply ``success`` when every compare holds, else ``failure``; atomically. At most MAX_TXN_OPS ops."""

    @abc.abstractmethod
    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        """Batches of events on keys under ``prefix`` from ``start_revision`` on, in revision order.

        Survives a lost connection by re-watching from the last revision seen; raises Compacted when
        that revision is gone. The iterator ends only when the caller stops iterating or the store closes.
        """

    @abc.abstractmethod
    async def lease_grant(self, ttl: float) -> int: ...

    @abc.abstractmethod
    async def lease_refresh(self, lease_id: int) -> float:
        """Keep the lease alive; returns the remaining TTL in seconds, raising StoreError if it expired."""

    @abc.abstractmethod
    async def lease_revoke(self, lease_id: int) -> None: ...

    def blocking_lease_refresh(self) -> Callable[[int, float], float] | None:
        """``refresh(lease_id, timeout) -> remaining TTL`` callable from another thread (StoreError when
        it fails, a TTL <= 0 when the lease is gone), or None when this store lives on the event loop.

        A lease kept alive from a thread of its own outlives stalls of the event loop (see election).
        """
        return None

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def put(self, key: str, value: bytes, lease: int = 0) -> int:
        """Unconditional put; returns the new revision."""
        return (await self.txn([], [Put(key, value, lease)])).revision

    async def delete(self, key: str) -> int:
        return (await self.txn([], [Delete(key)])).revision
