"""A reactor spaces its passes by the time they held the event loop, not by the time their writes waited
on the store: a slow commit does not hold back the next pass (each hop of a rolling update's chain --
updater, scheduler, allocator -- waited as long again as its last commit took)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from shoal.manager.cache import ClusterCache
from shoal.manager.reactor import Reactor, debounce_s
from shoal.manager.store import objects
from shoal.manager.store.base import Compare, Op, TxnResult
from shoal.manager.store.memory import MemoryStore
from shoal.manager.store.writes import Writer, commit_clock
from shoal.proto import types_pb2 as pb

COMMIT_S = 0.25


class SlowCommits(MemoryStore):
    """A store whose every transaction takes ``COMMIT_S`` (a busy etcd)."""

    async def txn(self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> TxnResult:
        await asyncio.sleep(COMMIT_S)
        return await super().txn(compares, success, failure)


async def test_a_pass_that_waited_on_a_slow_commit_does_not_hold_the_next_one_back():
    store = SlowCommits()
    cache = ClusterCache(store)
    follow = asyncio.create_task(cache.run())
    await asyncio.wait_for(cache.ready.wait(), 2)
    passes: list[float] = []

    async def step(dirty: set[str]) -> tuple[int, None]:
        passes.append(asyncio.get_running_loop().time())
        if len(passes) == 1:
            return await Writer(store).apply(objects.tasks.create(pb.Task(id="t1"))), None
        return 0, None

    reactor = Reactor("test", cache, step, debounce=0.001, max_debounce=1.0)
    runner = asyncio.create_task(reactor.run())
    try:
        reactor.mark("first")
        for _ in range(300):
            if reactor.last_end:
                break
            await asyncio.sleep(0.005)
        assert reactor.last_end, "the first pass ended"
        assert reactor.last_pass < 0.1, f"the pass held the loop {reactor.last_pass:.3f} s, not its {COMMIT_S} s commit"
        now = reactor.last_end
        assert debounce_s(now, reactor.last_end, reactor.last_pass, 0.001, 1.0) < 0.1
        reactor.mark("second")
        for _ in range(300):
            if len(passes) == 2:
                break
            await asyncio.sleep(0.005)
        assert passes[1] - passes[0] >= COMMIT_S
        assert passes[1] - passes[0] < 2 * COMMIT_S, "the next pass came once the commit was seen, not a commit later"
    finally:
        runner.cancel()
        follow.cancel()
        await asyncio.gather(runner, follow, return_exceptions=True)


async def test_transactions_in_flight_together_count_once_and_none_are_timed_outside_a_clock():
    store = SlowCommits()
    writer = Writer(store)
    await writer.apply(objects.tasks.create(pb.Task(id="t0")))  # no clock here: nothing to time, nothing fails
    with commit_clock() as clock:
        await asyncio.gather(*(writer.apply(objects.tasks.create(pb.Task(id=f"t{i}"))) for i in range(1, 4)))
    assert COMMIT_S * 0.9 <= clock.waited < 2 * COMMIT_S, f"three overlapping commits waited {clock.waited:.3f} s in all"
    with commit_clock() as clock:
        await writer.apply(objects.tasks.create(pb.Task(id="t9")))
        await writer.apply(objects.tasks.create(pb.Task(id="t10")))
    assert clock.waited >= 2 * COMMIT_S * 0.9, "commits one after the other add up"
