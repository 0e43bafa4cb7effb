"""The manager's cache mirrors the store through its watch and keeps the tasks-by-node index right."""

import asyncio

from shoal.manager import keys
from shoal.manager.cache import ClusterCache
from shoal.manager.store.memory import MemoryStore
from shoal.proto import types_pb2 as pb


async def settle(cache: ClusterCache, store: MemoryStore) -> None:
    rev = (await store.range("/")).revision
    for _ in range(200):
        if cache.revision >= rev:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("cache did not catch up")


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
