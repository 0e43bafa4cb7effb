"""The reactor reads its own writes: after a pass commits, the next pass waits for the cache to have them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from shoal.manager.cache import ClusterCache
from shoal.manager.reactor import ALL, Reactor, next_wake
from shoal.manager.store import objects
from shoal.manager.store.base import Event
from shoal.manager.store.memory import MemoryStore
from shoal.manager.store.writes import Writer
from shoal.proto import types_pb2 as pb


class SlowWatch(MemoryStore):
    """A store whose watch delivers each batch ``delay`` seconds late (a busy etcd, a slow network)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        inner = super().watch(prefix, start_revision)

        async def slowed() -> AsyncIterator[list[Event]]:
            async for batch in inner:
                await asyncio.sleep(self.delay)
                yield batch

        return slowed()


async def test_the_next_pass_sees_what_the_last_pass_wrote():
    store = SlowWatch(delay=0.1)
    cache = ClusterCache(store)
    follow = asyncio.create_task(cache.run())
    await asyncio.wait_for(cache.ready.wait(), 2)
    seen: list[set[str]] = []
    reactor: Reactor

    async def step(dirty: set[str]) -> tuple[int, None]:
        seen.append(set(cache.objects["task"]))
        if len(seen) == 1:
            reactor.mark("again")  # an event arrived while this pass ran
            return await Writer(store).apply(objects.tasks.create(pb.Task(id="t1"))), None
        return 0, None

    reactor = Reactor("test", cache, step, debounce=0.001)
    runner = asyncio.create_task(reactor.run())
    try:
        reactor.mark("first")
        for _ in range(200):
            if len(seen) >= 2:
                break
            await asyncio.sleep(0.01)
        assert seen[0] == set()
        assert seen[1] == {"t1"}, "the second pass decided on the first pass's write, not on a stale cache"
    finally:
        runner.cancel()
        follow.cancel()
        await store.close()


async def test_a_pass_that_wrote_nothing_does_not_wait():
    store = SlowWatch(delay=5.0)  # a wait for the cache would outlast the test
    cache = ClusterCache(store)
    await cache.load()
    cache.ready.set()
    passes = 0

    async def step(dirty: set[str]) -> tuple[int, None]:
        nonlocal passes
        passes += 1
        return 0, None

    reactor = Reactor("test", cache, step, debounce=0.001)
    runner = asyncio.create_task(reactor.run())
    try:
        reactor.mark("a")
        await asyncio.sleep(0.05)
        reactor.mark("b")
        await asyncio.sleep(0.05)
        assert passes == 2
    finally:
        runner.cancel()
        await store.close()


async def test_a_cancelled_wait_ends_even_when_its_revision_arrives_in_the_same_moment():
    """Python 3.11's asyncio.wait_for returns the result when the awaited future completes in the same
    tick as the cancellation (gh-86296): the cancel is lost, the reactor loops on and the manager's
    shutdown (or a test's teardown) waits for it forever. Seen in CI as a 120 s hang."""
    cache = ClusterCache(MemoryStore())
    waiter = asyncio.create_task(cache.wait_for(5, timeout=10))
    await asyncio.sleep(0)  # it waits for revision 5
    cache.revision = 5
    cache._wake()  # the watch brings revision 5 ...
    waiter.cancel()  # ... as the loop is cancelled (leadership lost, shutdown)
    try:
        await asyncio.wait_for(asyncio.shield(waiter), 2)  # shielded: the test's own timeout cannot hide the bug
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the cancellation was swallowed: the wait returned as if nothing happened")


async def test_a_cancelled_reactor_stops_even_when_it_is_woken_in_the_same_moment():
    cache = ClusterCache(MemoryStore())
    follow = asyncio.create_task(cache.run())
    await asyncio.wait_for(cache.ready.wait(), 2)

    async def step(dirty: set[str]) -> tuple[int, int]:
        return 0, time.time_ns() + 10**10  # wake me in 10 s: the loop waits with a timeout

    reactor = Reactor("test", cache, step, debounce=0.001)
    reactor.mark("first")
    loop = asyncio.create_task(reactor.run())
    try:
        for _ in range(200):
            if reactor._wake_at is not None:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)  # it waits for its event, with a timeout
        reactor.mark("x")  # an event arrives ...
        loop.cancel()  # ... as the loop is cancelled
        done, _ = await asyncio.wait({loop}, timeout=2)
        assert done, "the reactor swallowed its cancellation and kept running"
    finally:
        loop.cancel()
        follow.cancel()
        await asyncio.gather(loop, follow, return_exceptions=True)


def test_a_wake_survives_passes_over_other_ids() -> None:
    assert next_wake(None, 5, looked_at_all=False) == 5
    assert next_wake(5, None, looked_at_all=False) == 5, "a pass over other ids keeps the wake pending"
    assert next_wake(5, 3, looked_at_all=False) == 3 and next_wake(3, 5, looked_at_all=False) == 3
    assert next_wake(5, None, looked_at_all=True) is None, "a pass over everything decides alone"
    assert next_wake(5, 7, looked_at_all=True) == 7


async def test_a_delayed_decision_still_falls_due_after_a_pass_over_another_id():
    """A service waiting out its monitoring period asked to be woken; an event for another service (or
    one that came during the debounce) must not make the reactor forget it (an update never completed)."""
    store = MemoryStore()
    cache = ClusterCache(store)
    await cache.load()
    cache.ready.set()
    seen: list[set[str]] = []

    async def step(dirty: set[str]) -> tuple[int, int | None]:
        seen.append(set(dirty))
        if dirty == {"monitored"}:
            return 0, time.time_ns() + 150_000_000  # decide again in 150 ms
        return 0, None

    reactor = Reactor("test", cache, step, debounce=0.001)
    runner = asyncio.create_task(reactor.run())
    try:
        reactor.mark("monitored")
        await asyncio.sleep(0.05)
        reactor.mark("other")
        for _ in range(300):
            if ALL in set().union(*seen):
                break
            await asyncio.sleep(0.01)
        assert seen[:2] == [{"monitored"}, {"other"}]
        assert any(ALL in d for d in seen[2:]), "the pass the first id asked for came"
    finally:
        runner.cancel()
        await store.close()
