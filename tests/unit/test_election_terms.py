"""Leader election on a lease, on the in-memory store (its clock is moved by hand, so no test sleeps a TTL).

One candidate leads at a time and runs ``lead(fence)``; its fence stops a deposed leader's writes; a
leader whose lease cannot be refreshed steps down and its work is cancelled; a crash of the leader's
work ends its term and frees the key for the next candidate; a follower takes over once the leader's
lease is gone.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from shoal.manager.election import IS_LEADER, Election
from shoal.manager.store import keys, objects
from shoal.manager.store.base import StoreError
from shoal.manager.store.memory import MemoryStore
from shoal.manager.store.writes import Conflict, Fence, Writer
from shoal.proto import types_pb2 as pb
from tests.timing import eventually


@pytest.fixture
async def store():
    s = MemoryStore()
    yield s
    await s.close()


class Leading:
    """A ``lead`` callback that records its fence and runs until cancelled (or told to crash)."""

    def __init__(self) -> None:
        self.fences: list[Fence] = []
        self.cancelled = 0
        self.crash: BaseException | None = None
        self.started = asyncio.Event()

    async def __call__(self, fence: Fence) -> None:
        self.fences.append(fence)
        self.started.set()
        try:
            while self.crash is None:
                await asyncio.sleep(0.01)
            raise self.crash
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


async def run(e: Election, lead: Leading) -> asyncio.Task:
    return asyncio.create_task(e.run(lead))


async def stop(*tasks: asyncio.Task) -> None:
    for t in tasks:
        t.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await t


async def test_the_first_candidate_leads_with_the_election_keys_revision_as_its_fence(store):
    e, lead = Election(store, "m1", ttl=2.0), Leading()
    task = await run(e, lead)
    try:
        await asyncio.wait_for(lead.started.wait(), 5)
        assert e.leader_id == "m1" and await objects.leader_of(store) == "m1"
        kv = await store.get(keys.LEADER)
        assert lead.fences == [Fence(keys.LEADER, kv.create_revision)]
        assert IS_LEADER._value.get() == 1
    finally:
        await stop(task)


async def test_a_second_candidate_follows_and_sees_who_leads(store):
    e1, l1 = Election(store, "m1"), Leading()
    e2, l2 = Election(store, "m2"), Leading()
    t1 = await run(e1, l1)
    await asyncio.wait_for(l1.started.wait(), 5)
    t2 = await run(e2, l2)
    try:
        await eventually(lambda: _is(e2.leader_id, "m1"), 5, "the follower seeing the leader")
        assert l2.fences == [], "no second leader"
    finally:
        await stop(t1, t2)


async def test_a_follower_takes_over_when_the_leaders_lease_runs_out(store):
    e1, l1 = Election(store, "m1", ttl=2.0), Leading()
    e2, l2 = Election(store, "m2", ttl=2.0), Leading()
    t1 = await run(e1, l1)
    await asyncio.wait_for(l1.started.wait(), 5)
    t2 = await run(e2, l2)
    try:
        await eventually(lambda: _is(e2.leader_id, "m1"), 5, "m2 following")
        t1.cancel()  # m1 stops (its keepalives stop); its lease is revoked on the way out
        with contextlib.suppress(asyncio.CancelledError):
            await t1
        await asyncio.wait_for(l2.started.wait(), 5)
        assert e2.leader_id == "m2" and l1.cancelled == 1
        assert l2.fences[0].create_revision > l1.fences[0].create_revision, "a newer term, a newer fence"
    finally:
        await stop(t2)


async def test_a_deposed_leaders_fence_stops_its_writes(store):
    e1, l1 = Election(store, "m1", ttl=2.0), Leading()
    t1 = await run(e1, l1)
    await asyncio.wait_for(l1.started.wait(), 5)
    await stop(t1)
    old = l1.fences[0]
    e2, l2 = Election(store, "m2", ttl=2.0), Leading()
    t2 = await run(e2, l2)
    try:
        await asyncio.wait_for(l2.started.wait(), 5)
        with pytest.raises(Conflict):
            await Writer(store, old).apply(objects.nodes.create(pb.Node(id="n1")))
        await Writer(store, l2.fences[0]).apply(objects.nodes.create(pb.Node(id="n1")))
        assert await objects.nodes.get(store, "n1") is not None
    finally:
        await stop(t2)


class FlakyRefresh(MemoryStore):
    """A store whose lease refreshes fail once ``broken`` is set (etcd unreachable from this manager)."""

    broken = False

    async def lease_refresh(self, lease: int) -> float:
        if self.broken:
            raise StoreError("etcd unreachable")
        return await super().lease_refresh(lease)


async def test_a_leader_that_cannot_refresh_its_lease_steps_down_and_its_work_stops():
    store = FlakyRefresh()
    e, lead = Election(store, "m1", ttl=0.4), Leading()
    task = await run(e, lead)
    try:
        await asyncio.wait_for(lead.started.wait(), 5)
        store.broken = True
        await eventually(lambda: _is(lead.cancelled >= 1, True), 5, "the leader's work cancelled")
    finally:
        await stop(task)
        await store.close()


async def test_a_crash_of_the_leaders_work_surfaces_and_frees_the_key(store):
    e, lead = Election(store, "m1", ttl=2.0), Leading()
    task = await run(e, lead)
    await asyncio.wait_for(lead.started.wait(), 5)
    lead.crash = RuntimeError("scheduler bug")
    with pytest.raises(RuntimeError, match="scheduler bug"):
        await asyncio.wait_for(task, 5)  # the manager sees its leader loops crash (it stops, loudly)
    assert await objects.leader_of(store) == "", "the lease was revoked: the next candidate need not wait a TTL"
    assert e.leader_id == "" and IS_LEADER._value.get() == 0


async def test_the_key_goes_with_the_lease_when_the_store_time_passes_the_ttl(store):
    lease = await store.lease_grant(2)
    await Writer(store).apply(objects.campaign("ghost", lease))
    assert await objects.leader_of(store) == "ghost"
    store.advance(2.5)
    assert await objects.leader_of(store) == ""
    e, lead = Election(store, "m1", ttl=2.0), Leading()
    task = await run(e, lead)
    try:
        await asyncio.wait_for(lead.started.wait(), 5)
        assert e.leader_id == "m1"
    finally:
        await stop(task)


class Unreachable(MemoryStore):
    fail = 3

    async def get(self, key: str):  # type: ignore[no-untyped-def]
        if self.fail:
            self.fail -= 1
            raise StoreError("connection refused")
        return await super().get(key)


async def test_an_unreachable_store_is_retried_until_it_answers():
    store = Unreachable()
    e, lead = Election(store, "m1", ttl=2.0), Leading()
    task = await run(e, lead)
    try:
        await asyncio.wait_for(lead.started.wait(), 10)
        assert store.fail == 0 and e.leader_id == "m1"
    finally:
        await stop(task)
        await store.close()


async def _is(value: object, expected: object) -> bool:
    return value == expected


class SlowToStop(Leading):
    """Work that takes a moment to wind down when cancelled (closing its watches, say)."""

    def __init__(self) -> None:
        super().__init__()
        self.stopping = asyncio.Event()

    async def __call__(self, fence: Fence) -> None:
        try:
            await super().__call__(fence)
        except asyncio.CancelledError:
            self.stopping.set()
            await asyncio.sleep(0.3)
            raise


async def test_a_shutdown_while_the_leaders_work_winds_down_still_stops_the_election():
    """The manager cancels the election while a lost term's work is being cancelled: the election must stop,
    not swallow the cancellation and campaign again (a manager that would never exit)."""
    store = FlakyRefresh()
    e, lead = Election(store, "m1", ttl=0.4), SlowToStop()
    task = await run(e, lead)
    try:
        await asyncio.wait_for(lead.started.wait(), 5)
        store.broken = True  # the term ends: its work is cancelled and takes 0.3 s to stop
        await asyncio.wait_for(lead.stopping.wait(), 5)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=3)  # not wait_for: it would wait for a task that never ends
        assert task in done and task.cancelled(), "the election ignored the shutdown"
    finally:
        if task.done():
            await stop(task)
        await store.close()
