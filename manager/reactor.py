"""A dirty-set work loop: watch events mark ids dirty, one pass handles the whole dirty set.

Duplicate events merge (the set), a pass never runs concurrently with itself, and a pass may ask to be
woken at a later time (a restart delay). Under load a pass starts no sooner after the last one ended
than that one held the event loop (up to ``max_debounce``), so a storm of events is handled in a few
big passes rather than many passes each over everything, and the loop never spends most of its time in
one reactor. The time a pass's writes waited on the store does not count (``commit_clock``): a pass
that waited 60 ms for etcd held the loop for none of it, and holding the next pass back as long delayed
each hop of a rolling update's chain (updater, scheduler, allocator) by as much. An
event that comes after a quiet spell is handled at once (see ``debounce_s``): a health report a
rolling update waits for is not held back because the pass before it, long ago, was a big one. A wake
asked for by one id survives passes over other ids (see ``next_wake``). After a
commit the loop waits until the cache has seen its own writes (``ClusterCache.wait_for``), so a decision
is never made twice on stale data.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from shoal import log
from shoal.manager.cache import ClusterCache, Listener
from shoal.manager.store.writes import commit_clock
from shoal.retry import Backoff

_log = log.get(__name__)

ALL = "*"  # the dirty id meaning "everything"
Pass = Callable[[set[str]], Awaitable[tuple[int, int | None]]]  # dirty ids -> (revision written, wake at ns)


def debounce_s(now: float, last_end: float, last_pass: float, debounce: float, max_debounce: float) -> float:
    """How long to wait before the next pass (pure): ``debounce`` at least, so events that come together
    go in one pass; until as long after the last pass's end as it took, so a busy loop spends at most
    about half its time in passes; never more than ``max_debounce``."""
    return min(max(debounce, last_end + last_pass - now), max_debounce)


def next_wake(pending: int | None, asked: int | None, looked_at_all: bool) -> int | None:
    """When to wake next: a pass over some ids only adds its wake to the one pending (which another
    id asked for: a restart delay, a monitoring period); a pass over everything decides it alone."""
    if looked_at_all or pending is None:
        return asked
    return pending if asked is None else min(pending, asked)


class Reactor:
    def __init__(self, name: str, cache: ClusterCache, step: Pass, debounce: float = 0.005, max_debounce: float = 0.5) -> None:
        self.name = name
        self.cache = cache
        self.step = step
        self.debounce = debounce
        self.max_debounce = max_debounce
        self.last_pass = 0.0  # seconds the last pass held the event loop (its wall time less its commits')
        self.last_end = 0.0  # when it ended (time.monotonic())
        self.dirty: set[str] = set()
        self._event = asyncio.Event()
        self._wake_at: int | None = None

    def mark(self, *ids: str) -> None:
        self.dirty.update(ids)
        self._event.set()

    async def follow(self, listener: Listener) -> None:
        """Run with ``listener`` subscribed to the cache, starting with a pass over everything."""
        self.cache.listeners.append(listener)
        try:
            self.mark(ALL)
            await self.run()
        finally:
            self.cache.listeners.remove(listener)

    async def run(self) -> None:
        await self.cache.ready.wait()
        backoff = Backoff(0.1, 5.0)  # after a pass that raised
        while True:
            timeout = None
            if self._wake_at is not None:
                timeout = max((self._wake_at - time.time_ns()) / 1e9, 0)
            try:
                async with asyncio.timeout(timeout):
                    await self._event.wait()
            except TimeoutError:
                self.dirty.add(ALL)  # a delayed decision fell due: look at everything
            self._event.clear()
            woke = time.monotonic()
            await asyncio.sleep(debounce_s(woke, self.last_end, self.last_pass, self.debounce, self.max_debounce))
            dirty, self.dirty = self.dirty, set()
            if not dirty:
                continue  # marked during the debounce: the ids went with the pass before
            started = time.monotonic()
            try:
                with commit_clock() as commits:
                    rev, wake = await self.step(dirty)
                self.last_end = time.monotonic()
                self.last_pass = max(0.0, self.last_end - started - commits.waited)
                backoff.reset()
                _log.debug("reconcile pass", loop=self.name, ids=len(dirty), debounce_s=round(started - woke, 4),
                           took_s=round(self.last_end - started, 4), commit_s=round(commits.waited, 4), revision=rev or None)
            except Exception:
                _log.exception("reconcile pass failed; retrying", loop=self.name)
                self.dirty |= dirty
                await backoff.sleep()
                self._event.set()
                continue
            self._wake_at = next_wake(self._wake_at, wake, ALL in dirty)
            if rev:
                await self.cache.wait_for(rev, timeout=2.0)
