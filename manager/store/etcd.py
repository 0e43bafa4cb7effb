"""The Store on a real etcd, through python3-etcd3 (the only module of shoal that imports ``etcd3``).

The client is synchronous and thread-based, so every call runs in this store's own small thread pool,
never on the event loop, and watch callbacks are handed to the loop with ``call_soon_threadsafe``.
It has two faults this module covers: its watch thread still calls ``six`` when a stream ends (shimmed
below, so callbacks learn of the failure), and a watch just stops when the connection drops, so each
watch here re-watches from the last revision it delivered + 1, with backoff, until etcd is back. A
watch created on a compacted revision only fails after the client timeout, so a cheap range probe at
that revision detects compaction first. Raw gRPC requests are used rather than the client's helpers
because they keep the response headers (revisions) that the interface returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import time
import types
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

import etcd3
import etcd3.events
import etcd3.exceptions
import etcd3.watch
import grpc
from etcd3 import etcdrpc

import shoal.log
from shoal.etcdtls import EtcdTLS
from shoal.retry import Backoff

from .base import (
    KV,
    MAX_TXN_OPS,
    WRITE_DEADLINE,
    Compacted,
    Compare,
    Event,
    LeaseNotFound,
    Op,
    Range,
    Store,
    StoreError,
    TxnResult,
)
from .etcdwire import compare_msg, event_of, key_range, kv_of, op_msg

__all__ = ["EtcdStore", "connect"]

log = shoal.log.get(__name__)

# python3-etcd3 0.13 dropped its ``six`` import but watch.py still uses it when a stream ends.
etcd3.watch.six = types.SimpleNamespace(itervalues=lambda d: iter(d.values()))

T = TypeVar("T")
_CLOSED = object()
_MIN_BACKOFF = 0.05  # seconds before the first re-watch; doubles up to 1 s (shoal.retry.Backoff)
_PAGE = 2000  # keys per range request; later pages are read at the first page's revision
SLOW_CALL_S = 1.0  # an etcd call (its wait for a pool thread included) slower than this is logged
WRITE_TIMEOUT_S = 2.0  # far past a loaded etcd's write latency, far short of its 5 s for a proposal lost with its leader
_UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
_GRPC_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 10_000),  # etcd refuses pings more often than every 5 s
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]

class EtcdStore(Store):
    """A Store on one etcd cluster; ``endpoints`` are its members' client URLs, tried in turn.

    Writes get a shorter deadline (``write_timeout``) than reads: a write that reached a follower just
    as the raft leader died is forwarded to the dead leader and lost, and etcd only answers it after its
    own request timeout (5 s plus two election timeouts). A write that outlives ``write_timeout`` fails
    with StoreError ("maybe applied", as any write cut short): compare-guarded writes refuse a second
    copy, so the caller re-reads and retries on the new raft leader instead of waiting 5 s.
    """

    def __init__(self, endpoints: Sequence[str], timeout: float = 5.0, tls: EtcdTLS | None = None, write_timeout: float = WRITE_TIMEOUT_S,
                 dedicated: bool = False) -> None:  # fmt: skip
        if not endpoints:
            raise ValueError("no etcd endpoints given")
        self._tls = tls  # the etcd CA and this client's certificate: https endpoints need them
        self._urls = list(endpoints)
        self._addrs = [self._parse(url) for url in self._urls]
        self._clients: list[etcd3.Etcd3Client | None] = [None] * len(self._urls)
        self._current = 0
        # SHOAL_ETCD_TIME_SCALE stretches both deadlines on a slow machine (the cgroup-v2 test VM runs under
        # emulation, where one TLS call can take seconds); 1 everywhere else
        scale = max(1.0, float(os.environ.get("SHOAL_ETCD_TIME_SCALE", "1") or 1))
        self._scale = scale
        self._timeout = timeout * scale
        self._write_timeout = min(write_timeout, timeout) * scale
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="etcd")
        self._args = (timeout, tls, write_timeout)
        # gRPC shares one TCP connection between channels to the same address unless told not to
        self._options = [*_GRPC_OPTIONS, ("grpc.use_local_subchannel_pool", 1)] if dedicated else _GRPC_OPTIONS
        self._lease_line: EtcdStore | None = None  # the leader lease's keepalives: a connection of their own
        self._watch_queues: set[asyncio.Queue[Any]] = set()
        self._closed = False

    def _parse(self, url: str) -> tuple[str, int]:
        parts = urlsplit(url if "://" in url else f"{'https' if self._tls else 'http'}://{url}")
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"unsupported etcd endpoint {url!r}: use https:// (or http:// for an etcd without TLS)")
        if (parts.scheme == "https") != (self._tls is not None):
            raise ValueError(f"etcd endpoint {url!r}: https needs the etcd CA and a client certificate, and they need https")
        return parts.hostname or "127.0.0.1", parts.port or 2379

    @property
    def endpoints(self) -> list[str]:
        return list(self._urls)

    def _client(self, i: int) -> etcd3.Etcd3Client:
        client = self._clients[i]
        if client is None:
            host, port = self._addrs[i]
            t = self._tls
            creds = {"ca_cert": str(t.ca), "cert_cert": str(t.cert), "cert_key": str(t.key)} if t is not None else {}
            client = etcd3.client(host, port, timeout=self._timeout, grpc_options=self._options, **creds)
            self._clients[i] = client
        return client

    def _call_sync(self, fn: Callable[[etcd3.Etcd3Client], T], *, write: bool = False) -> T:
        """Run ``fn`` on the current endpoint, failing over to the others when it cannot be reached.

        A write is retried elsewhere only on UNAVAILABLE (not sent), never after a deadline (maybe applied).
        """
        failures = []
        for attempt in range(len(self._urls)):
            i = (self._current + attempt) % len(self._urls)
            try:
                result = fn(self._client(i))
            except grpc.RpcError as e:
                code = e.code()
                if code not in _UNREACHABLE:
                    raise _refused(e) from None
                failures.append((self._urls[i], e.details()))
                if write and code is grpc.StatusCode.DEADLINE_EXCEEDED:
                    break
                continue
            self._current = i
            return result
        where = ", ".join(url for url, _ in failures)
        raise StoreError(f"cannot reach etcd at {where}: {failures[-1][1]}")

    async def _run(self, fn: Callable[[etcd3.Etcd3Client], T], *, write: bool = False) -> T:
        if self._closed:
            raise StoreError("store is closed")
        queued, started = time.monotonic(), [0.0]

        def call() -> T:
            started[0] = time.monotonic()
            return self._call_sync(fn, write=write)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, call)
        finally:
            if (took := time.monotonic() - queued) > SLOW_CALL_S:  # where a failover's time goes: a lost write, a full pool
                log.warning("slow etcd call", write=write, took_s=round(took, 3), queued_s=round(max(started[0] - queued, 0), 3))

    async def status(self) -> int:
        """The etcd member's status; returns the current revision. Raises StoreError when unreachable."""
        resp = await self._run(lambda c: c.maintenancestub.Status(etcdrpc.StatusRequest(), timeout=self._timeout))
        return int(resp.header.revision)

    async def get(self, key: str) -> KV | None:
        req = etcdrpc.RangeRequest(key=key.encode())
        resp = await self._run(lambda c: c.kvstub.Range(req, timeout=self._timeout))
        return kv_of(resp.kvs[0]) if resp.kvs else None

    async def range(self, prefix: str) -> Range:
        return await self._run(lambda c: self._range_sync(c, prefix))

    def _range_sync(self, c: etcd3.Etcd3Client, prefix: str) -> Range:
        key, end = key_range(prefix)
        out = Range()
        while True:
            req = etcdrpc.RangeRequest(key=key, range_end=end, limit=_PAGE, revision=out.revision)
            resp = c.kvstub.Range(req, timeout=self._timeout)
            out.revision = out.revision or resp.header.revision
            out.kvs.extend(kv_of(kv) for kv in resp.kvs)
            if not resp.more:
                return out
            key = resp.kvs[-1].key + b"\0"

    async def txn(self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> TxnResult:
        for ops in (success, failure):
            if len(ops) > MAX_TXN_OPS:
                raise ValueError(f"a transaction takes at most {MAX_TXN_OPS} operations, got {len(ops)}")
        req = etcdrpc.TxnRequest(compare=[compare_msg(c) for c in compares],
                                 success=[op_msg(o) for o in success], failure=[op_msg(o) for o in failure])
        quick = WRITE_DEADLINE.get()  # read here, in the caller's context, not in the pool's thread
        timeout = self._write_timeout if quick is None else min(self._write_timeout, quick * self._scale)
        resp = await self._run(lambda c: c.kvstub.Txn(req, timeout=timeout), write=True)
        return TxnResult(bool(resp.succeeded), int(resp.header.revision))

    async def compact(self, revision: int) -> None:
        """Compact etcd's history up to ``revision`` (for tests and maintenance)."""
        req = etcdrpc.CompactionRequest(revision=revision, physical=True)
        await self._run(lambda c: c.kvstub.Compact(req, timeout=self._timeout), write=True)

    async def lease_grant(self, ttl: float) -> int:
        if ttl <= 0:
            raise ValueError(f"lease TTL must be positive, got {ttl}")
        req = etcdrpc.LeaseGrantRequest(TTL=max(1, math.ceil(ttl)))
        resp = await self._run(lambda c: c.leasestub.LeaseGrant(req, timeout=self._write_timeout), write=True)
        if resp.error:
            raise StoreError(f"etcd refused the lease: {resp.error}")
        return int(resp.ID)

    async def lease_refresh(self, lease_id: int) -> float:
        ttl = await self._run(functools.partial(_keepalive, lease_id=lease_id, timeout=self._timeout))
        if ttl <= 0:
            raise StoreError(f"lease {lease_id:x} expired or not found")
        return ttl

    def blocking_lease_refresh(self) -> Callable[[int, float], float]:
        """A keepalive for other threads, on a connection of its own: not queued behind this store's pool,
        nor behind its big reads and watch streams on a shared HTTP/2 connection."""
        if self._lease_line is None:
            self._lease_line = EtcdStore(self._urls, *self._args, dedicated=True)
        line = self._lease_line

        def refresh(lease_id: int, timeout: float) -> float:
            if self._closed:
                raise StoreError("store is closed")
            return line._call_sync(functools.partial(_keepalive, lease_id=lease_id, timeout=timeout * self._scale))

        return refresh

    async def lease_revoke(self, lease_id: int) -> None:
        req = etcdrpc.LeaseRevokeRequest(ID=lease_id)
        with contextlib.suppress(_LeaseNotFound):
            await self._run(lambda c: c.leasestub.LeaseRevoke(req, timeout=self._write_timeout), write=True)

    # -- watches -----------------------------------------------------------------------------------

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        return self._watch(prefix, start_revision)

    def _add_watch(self, c: etcd3.Etcd3Client, key: bytes, end: bytes, start: int, cb: Callable[[Any], None]) -> Any:
        if start > 0:  # a watch on a compacted revision only fails after the timeout: probe first
            try:
                c.kvstub.Range(etcdrpc.RangeRequest(key=key, range_end=end, limit=1, revision=start), timeout=self._timeout)
            except grpc.RpcError as e:
                if "compacted" in (e.details() or ""):
                    raise Compacted(f"watch from revision {start}: {e.details()}") from None
                if e.code() in _UNREACHABLE:
                    raise
        try:
            watch_id = c.watcher.add_callback(key, cb, range_end=end, start_revision=start or None)
        except etcd3.exceptions.RevisionCompactedError as e:
            raise Compacted(f"watch from revision {start}: compacted at {e.compacted_revision}") from None
        except etcd3.exceptions.WatchTimedOut:
            raise StoreError(f"etcd did not confirm the watch within {self._timeout:g}s") from None
        return c, watch_id

    async def _watch(self, prefix: str, start: int) -> AsyncIterator[list[Event]]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._watch_queues.add(queue)
        key, end = key_range(prefix)
        next_rev, generation, handle, interrupted = start, 0, None, False
        backoff = Backoff(_MIN_BACKOFF, 1.0)

        def deliver(gen: int, item: Any) -> None:  # called on the client's watch thread
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
                loop.call_soon_threadsafe(queue.put_nowait, (gen, item))

        try:
            while True:
                if handle is None:
                    try:
                        cb = functools.partial(deliver, generation)
                        handle = await self._run(
                            functools.partial(self._add_watch, key=key, end=end, start=next_rev, cb=cb))
                    except Compacted:
                        raise
                    except StoreError as e:
                        if self._closed:
                            return
                        if backoff.failures == 0 and not interrupted:
                            log.warning("cannot watch etcd; retrying", prefix=prefix, revision=next_rev, error=str(e))
                        with contextlib.suppress(TimeoutError):  # back off, but wake up on close
                            async with asyncio.timeout(backoff.next()):
                                woken = await queue.get()
                            if woken[1] is _CLOSED:
                                return
                        continue
                    if interrupted or backoff.failures:
                        log.info("etcd watch resumed", prefix=prefix, revision=next_rev)
                    interrupted = False
                    backoff.reset()
                gen, item = await queue.get()
                if item is _CLOSED:
                    return
                if gen != generation:
                    continue  # from a watch that already broke
                if isinstance(item, etcd3.watch.WatchResponse):
                    events = [event_of(e) for e in item.events if e.mod_revision >= next_rev]
                    if events:
                        next_rev = events[-1].mod_revision + 1
                        yield events
                elif isinstance(item, etcd3.exceptions.RevisionCompactedError):
                    raise Compacted(f"watch from revision {next_rev}: compacted at {item.compacted_revision}")
                else:  # the stream ended (an RpcError, or None): re-watch from the next revision
                    handle, generation, interrupted = None, generation + 1, True
                    why = item.details() if isinstance(item, grpc.RpcError) else "stream closed"
                    log.warning("etcd watch interrupted; re-watching", prefix=prefix, revision=next_rev, error=why)
        finally:
            self._watch_queues.discard(queue)
            if handle is not None and not self._closed:
                client, watch_id = handle
                with contextlib.suppress(RuntimeError):
                    self._pool.submit(client.watcher.cancel, watch_id)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for queue in self._watch_queues:
            queue.put_nowait((-1, _CLOSED))
        lines = [self, self._lease_line] if self._lease_line is not None else [self]
        clients = [c for line in lines for c in line._clients if c is not None]
        await asyncio.get_running_loop().run_in_executor(self._pool, lambda: [c.close() for c in clients])
        self._pool.shutdown(wait=False)


def _keepalive(c: etcd3.Etcd3Client, lease_id: int, timeout: float) -> float:
    """One LeaseKeepAlive round trip; the remaining TTL (0 when the lease is gone)."""
    stream = c.leasestub.LeaseKeepAlive(iter([etcdrpc.LeaseKeepAliveRequest(ID=lease_id)]), timeout=timeout)
    for resp in stream:
        return float(resp.TTL)
    return 0.0


class _LeaseNotFound(LeaseNotFound):
    pass


def _refused(e: grpc.RpcError) -> StoreError:
    details = e.details() or str(e.code())
    if e.code() is grpc.StatusCode.NOT_FOUND and "lease not found" in details:
        return _LeaseNotFound(details)
    return StoreError(details.removeprefix("etcdserver: "))


async def connect(endpoints: list[str], timeout: float = 5.0, tls: EtcdTLS | None = None, write_timeout: float = WRITE_TIMEOUT_S) -> EtcdStore:
    """An EtcdStore whose etcd answered a status call; StoreError naming the endpoints if none did."""
    store = EtcdStore(endpoints, timeout, tls, write_timeout)
    try:
        async with asyncio.timeout(store._timeout):  # SHOAL_ETCD_TIME_SCALE applies here too
            await store.status()
    except TimeoutError:
        await store.close()
        raise StoreError(f"cannot reach etcd at {', '.join(endpoints)}: no answer within {timeout:g}s") from None
    except BaseException:
        await store.close()
        raise
    return store
