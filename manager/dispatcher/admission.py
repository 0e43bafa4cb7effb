"""How much Register work one peer, and everyone together, may make a manager do.

Register answers before a caller holds any cluster certificate (every TLS handshake hands out the
CA certificate, so anyone can build a join certificate): without limits, one host could keep a
manager signing CSRs and reading etcd. Two guards, applied before any work:

- a token bucket per peer host for callers holding only a join certificate (``rate`` per second,
  ``burst`` at once). Loopback peers are exempt: they already run on the manager's host (the
  benches start a thousand simulated nodes there);
- at most ``concurrent`` registrations in flight on this manager, with at most ``max_waiting``
  queued behind them; beyond that the caller is told to retry (RESOURCE_EXHAUSTED, which agents
  retry with backoff).

The buckets are plain data driven by an injected clock, so the arithmetic is tested without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass


class Busy(Exception):
    """Too many registrations are in flight or queued on this manager."""


@dataclass
class Bucket:
    tokens: float
    at: float


def peer_host(peer: str) -> str:
    """``ipv4:10.0.0.9:40500`` -> ``10.0.0.9``; ``ipv6:[::1]:5`` -> ``::1``; ``unix:...`` as is."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv6" and rest.startswith("["):
        return rest[1:].partition("]")[0]
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    return peer


def loopback(host: str) -> bool:
    return host.startswith("127.") or host in ("::1", "localhost") or host.startswith("unix:")


class Admission:
    def __init__(
        self, rate: float = 10.0, burst: int = 40, concurrent: int = 16, max_waiting: int = 512,
        clock: Callable[[], float] = time.monotonic, max_peers: int = 10_000,
    ) -> None:  # fmt: skip
        self.rate, self.burst, self.max_peers = rate, burst, max_peers
        self.clock = clock
        self.buckets: dict[str, Bucket] = {}
        self._slots = asyncio.Semaphore(concurrent)
        self.max_waiting = max_waiting
        self.waiting = 0

    def allow(self, peer: str) -> bool:
        """Take one token from ``peer``'s bucket; False when it is empty (retry later)."""
        host = peer_host(peer)
        if loopback(host):
            return True
        now = self.clock()
        b = self.buckets.get(host)
        if b is None:
            if len(self.buckets) >= self.max_peers:
                self._forget_full(now)
            b = self.buckets[host] = Bucket(float(self.burst), now)
        b.tokens = min(float(self.burst), b.tokens + (now - b.at) * self.rate)
        b.at = now
        if b.tokens < 1.0:
            return False
        b.tokens -= 1.0
        return True

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled (their peers are quiet); keeps the table bounded."""
        full = [h for h, b in self.buckets.items() if b.tokens + (now - b.at) * self.rate >= self.burst]
        for h in full:
            del self.buckets[h]
        if len(self.buckets) >= self.max_peers:  # all busy: forget the oldest half
            for h in sorted(self.buckets, key=lambda h: self.buckets[h].at)[: self.max_peers // 2]:
                del self.buckets[h]

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the ``concurrent`` registration slots; Busy when too many wait already."""
        if self._slots.locked() and self.waiting >= self.max_waiting:
            raise Busy("too many registrations in progress on this manager; retry shortly")
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._slots.release()
