"""The manager's cache mirrors the store through its watch and keeps the tasks-by-node index right."""

import asyncio

from shoal.manager.cache import ClusterCache
from shoal.manager.store import keys
from shoal.manager.store.memory import MemoryStore
from shoal.proto import types_pb2 as pb


async def settle(cache: ClusterCache, store: MemoryStore) -> None:
    assert await cache.wait_for((await store.range("/")).revision, timeout=1), "cache did not catch up"


async def test_cache_follows_puts_moves_and_deletes():
    store = MemoryStore()
    await store.put(keys.key("task", "t1"), keys.encode(pb.Task(id="t1", node_id="n1")))
    cache = ClusterCache(store)
    seen: list[tuple[str, str, bool]] = []
    cache.listeners.append(lambda kind, oid, obj: seen.append((kind, oid, obj is not None)))
    runner = asyncio.create_task(cache.run())
    try:
        await asyncio.wait_for(cache.ready.wait(), 2)
        assert [t.id for t in cache.tasks_on("n1")] == ["t1"]
        await store.put(keys.key("task", "t1"), keys.encode(pb.Task(id="t1", node_id="n2")))
        await store.put(keys.key("task", "t2"), keys.encode(pb.Task(id="t2", node_id="n2")))
        await settle(cache, store)
        assert cache.tasks_on("n1") == []
        assert sorted(t.id for t in cache.tasks_on("n2")) == ["t1", "t2"]
        await store.delete(keys.key("task", "t1"))
        await settle(cache, store)
        assert [t.id for t in cache.tasks_on("n2")] == ["t2"]
        assert cache.get("task", "t1") is None and cache.get("task", "t2").node_id == "n2"
        assert ("task", "t1", False) in seen, "listeners hear about deletes"
    finally:
        runner.cancel()
        await store.close()


async def test_effective_status_prefers_the_agents_report_when_newer():
    store = MemoryStore()
    cache = ClusterCache(store)
    task = pb.Task(id="t1")
    task.status.state = pb.ASSIGNED
    await store.put(keys.key("task", "t1"), keys.encode(task))
    await store.put(keys.key("status", "t1"), keys.encode(pb.TaskStatus(state=pb.RUNNING)))
    await cache.load()
    assert cache.status(cache.get("task", "t1")).state == pb.RUNNING
    await store.close()


async def test_service_and_pending_indexes_follow_tasks_and_reports():
    store = MemoryStore()

    def task(tid: str, svc: str, state: int, node: str = "", desired: int = pb.RUNNING) -> bytes:
        t = pb.Task(id=tid, service_id=svc, node_id=node, desired_state=desired)
        t.status.state = state
        return keys.encode(t)

    await store.put(keys.key("task", "t1"), task("t1", "s1", pb.PENDING))
    await store.put(keys.key("task", "t2"), task("t2", "s1", pb.ASSIGNED, "n1"))
    await store.put(keys.key("task", "t3"), task("t3", "s2", pb.PENDING, desired=pb.SHUTDOWN))
    cache = ClusterCache(store)
    runner = asyncio.create_task(cache.run())
    try:
        await asyncio.wait_for(cache.ready.wait(), 2)
        assert sorted(t.id for t in cache.tasks_of("s1")) == ["t1", "t2"] and [t.id for t in cache.tasks_of("s2")] == ["t3"]
        assert cache.pending == {"t1"}, "only tasks desired RUNNING wait for the scheduler"
        await store.put(keys.key("task", "t1"), task("t1", "s1", pb.ASSIGNED, "n2"))  # placed
        await store.put(keys.key("task", "t3"), task("t3", "s3", pb.PENDING))  # another service, wanted again
        await settle(cache, store)
        assert cache.pending == {"t3"} and [t.id for t in cache.pending_tasks()] == ["t3"]
        assert [t.id for t in cache.tasks_of("s3")] == ["t3"] and cache.tasks_of("s2") == [] and "s2" not in cache.by_service
        await store.put(keys.key("status", "t3"), keys.encode(pb.TaskStatus(state=pb.REJECTED)))  # a report moves it on
        await store.delete(keys.key("task", "t2"))
        await settle(cache, store)
        assert cache.pending == set() and [t.id for t in cache.tasks_of("s1")] == ["t1"]
    finally:
        runner.cancel()
        await store.close()


# ---- waiting for a revision -------------------------------------------------------------------------


async def _following(store: MemoryStore) -> tuple[ClusterCache, asyncio.Task]:
    cache = ClusterCache(store)
    runner = asyncio.create_task(cache.run())
    await asyncio.wait_for(cache.ready.wait(), 2)
    return cache, runner


async def test_wait_for_a_revision_already_seen_returns_at_once():
    store = MemoryStore()
    rev = await store.put(keys.key("task", "t1"), keys.encode(pb.Task(id="t1")))
    cache = ClusterCache(store)
    await cache.load()
    assert await cache.wait_for(rev, timeout=0) is True
    assert await cache.wait_for(0) is True
    await store.close()


async def test_wait_for_wakes_when_the_watch_delivers_the_write():
    store = MemoryStore()
    cache, runner = await _following(store)
    try:
        rev = await store.put(keys.key("task", "t1"), keys.encode(pb.Task(id="t1", node_id="n1")))
        assert cache.get("task", "t1") is None, "not applied yet: the watch delivers on the loop"
        assert await cache.wait_for(rev, timeout=2) is True
        assert cache.get("task", "t1").node_id == "n1", "what was written is readable once wait_for returns"
    finally:
        runner.cancel()
        await store.close()


async def test_wait_for_a_revision_never_reached_times_out_with_false():
    store = MemoryStore()
    cache, runner = await _following(store)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await cache.wait_for(cache.revision + 5, timeout=0.05) is False
        assert loop.time() - started < 1
    finally:
        runner.cancel()
        await store.close()


async def test_waiters_wake_in_revision_order_each_when_its_revision_arrives():
    store = MemoryStore()
    cache, runner = await _following(store)
    try:
        base = cache.revision
        woke: list[int] = []

        async def waiter(rev: int) -> None:
            await cache.wait_for(rev, timeout=2)
            woke.append(rev)

        waiters = [asyncio.create_task(waiter(base + n)) for n in (3, 1, 2)]
        await asyncio.sleep(0)
        await store.put(keys.key("task", "a"), keys.encode(pb.Task(id="a")))
        for _ in range(100):
            if woke:
                break
            await asyncio.sleep(0.001)
        assert woke == [base + 1], "only the waiter for the first revision is due"
        await store.put(keys.key("task", "b"), keys.encode(pb.Task(id="b")))
        await store.put(keys.key("task", "c"), keys.encode(pb.Task(id="c")))
        await asyncio.wait_for(asyncio.gather(*waiters), 2)
        assert woke == [base + 1, base + 2, base + 3]
    finally:
        runner.cancel()
        await store.close()


async def test_a_write_outside_the_mirrored_kinds_still_advances_the_revision():
    store = MemoryStore()
    cache, runner = await _following(store)
    try:
        rev = await store.put(keys.CLUSTER, b"cluster")  # not an object the cache mirrors
        assert await cache.wait_for(rev, timeout=2) is True
    finally:
        runner.cancel()
        await store.close()


async def test_a_relist_wakes_the_waiters_it_satisfies():
    store = MemoryStore()
    cache = ClusterCache(store)
    await cache.load()
    rev = await store.put(keys.key("node", "n1"), keys.encode(pb.Node(id="n1")))
    waiting = asyncio.create_task(cache.wait_for(rev, timeout=2))
    await asyncio.sleep(0)
    assert not waiting.done()
    await cache.load()  # what the cache does after a compaction or a lost watch
    assert await waiting is True
    await store.close()


async def test_a_cancelled_waiter_does_not_disturb_the_others():
    store = MemoryStore()
    cache, runner = await _following(store)
    try:
        target = cache.revision + 1
        gone = asyncio.create_task(cache.wait_for(target))
        kept = asyncio.create_task(cache.wait_for(target, timeout=2))
        await asyncio.sleep(0)
        gone.cancel()
        await store.put(keys.key("task", "a"), keys.encode(pb.Task(id="a")))
        assert await kept is True
    finally:
        runner.cancel()
        await store.close()
