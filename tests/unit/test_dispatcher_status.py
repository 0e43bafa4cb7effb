"""Task status reports: only a task's own node reports on it, state moves forward only, writes are batched."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from shoal.manager.cache import ClusterCache
from shoal.manager.dispatcher.status import StatusWriter
from shoal.manager.store import objects
from shoal.manager.store.base import StoreError
from shoal.manager.store.memory import MemoryStore
from shoal.manager.store.writes import Writer
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from tests.fixtures.dispatcher import Aborted, Harness


@pytest.fixture
async def h():
    async with Harness(heartbeat_period=0.5) as harness:
        await harness.add_node("n1")
        await harness.add_node("n2")
        yield harness


def update(tid: str, state: int, message: str = "") -> dpb.TaskStatusUpdate:
    return dpb.TaskStatusUpdate(task_id=tid, status=pb.TaskStatus(state=state, message=message))  # type: ignore[arg-type]


async def stored(h: Harness, tid: str) -> int | None:
    got = await objects.statuses.get(h.store, tid)
    return got.obj.state if got is not None else None


async def session(h: Harness, node_id: str) -> str:
    s = h.open(node_id)
    return (await s.next()).session_id


async def test_a_report_is_written_before_the_call_returns(h: Harness):
    await h.put_task("a", "n1")
    sid = await session(h, "n1")
    req = dpb.UpdateTaskStatusRequest(node_id="n1", session_id=sid, updates=[update("a", pb.RUNNING, "started")])
    await h.dispatcher.UpdateTaskStatus(req, h.ca.node("n1"))
    got = await objects.statuses.get(h.store, "a")
    assert got is not None and got.obj.state == pb.RUNNING and got.obj.message == "started"


async def test_a_node_cannot_report_on_another_nodes_task(h: Harness):
    await h.put_task("theirs", "n2")
    await h.put_task("mine", "n1")
    sid = await session(h, "n1")
    req = dpb.UpdateTaskStatusRequest(node_id="n1", session_id=sid, updates=[update("mine", pb.RUNNING), update("theirs", pb.FAILED)])
    with pytest.raises(Aborted) as err:
        await h.dispatcher.UpdateTaskStatus(req, h.ca.node("n1"))
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED and "theirs" in err.value.details
    await asyncio.sleep(0.2)  # past a flush
    assert await stored(h, "theirs") is None and await stored(h, "mine") is None, "the whole call is refused"


async def test_a_report_needs_the_callers_live_session(h: Harness):
    await h.put_task("a", "n1")
    await session(h, "n1")
    req = dpb.UpdateTaskStatusRequest(node_id="n1", session_id="stale", updates=[update("a", pb.RUNNING)])
    with pytest.raises(Aborted) as err:
        await h.dispatcher.UpdateTaskStatus(req, h.ca.node("n1"))
    assert err.value.code == grpc.StatusCode.NOT_FOUND


async def test_state_only_moves_forward(h: Harness):
    await h.put_task("a", "n1")
    sid = await session(h, "n1")
    ctx = h.ca.node("n1")
    await h.dispatcher.UpdateTaskStatus(dpb.UpdateTaskStatusRequest(node_id="n1", session_id=sid, updates=[update("a", pb.RUNNING)]), ctx)
    await h.settle()
    await h.dispatcher.UpdateTaskStatus(dpb.UpdateTaskStatusRequest(node_id="n1", session_id=sid, updates=[update("a", pb.STARTING)]), ctx)
    await asyncio.sleep(0.2)
    assert await stored(h, "a") == pb.RUNNING, "a late, older report does not move the task back"
    await h.dispatcher.UpdateTaskStatus(dpb.UpdateTaskStatusRequest(node_id="n1", session_id=sid, updates=[update("a", pb.FAILED)]), ctx)
    assert await stored(h, "a") == pb.FAILED


async def test_a_report_behind_the_managers_own_state_is_dropped(h: Harness):
    await h.put_task("a", "n1", state=pb.SHUTDOWN, desired=pb.SHUTDOWN)  # ended by the manager already
    sid = await session(h, "n1")
    await h.dispatcher.UpdateTaskStatus(dpb.UpdateTaskStatusRequest(node_id="n1", session_id=sid, updates=[update("a", pb.RUNNING)]), h.ca.node("n1"))
    assert await stored(h, "a") is None


async def test_the_newest_of_several_reports_in_one_call_wins(h: Harness):
    await h.put_task("a", "n1")
    sid = await session(h, "n1")
    ups = [update("a", pb.ACCEPTED), update("a", pb.RUNNING), update("a", pb.STARTING)]
    await h.dispatcher.UpdateTaskStatus(dpb.UpdateTaskStatusRequest(node_id="n1", session_id=sid, updates=ups), h.ca.node("n1"))
    assert await stored(h, "a") == pb.RUNNING


# ---- the writer on its own ------------------------------------------------------------------------


@pytest.fixture
async def cache():
    store = MemoryStore()
    c = ClusterCache(store)
    runner = asyncio.create_task(c.run())
    await asyncio.wait_for(c.ready.wait(), 2)
    yield c
    runner.cancel()
    await store.close()


async def add_tasks(cache: ClusterCache, *tids: str) -> None:
    w = Writer(cache.store)
    rev = 0
    for tid in tids:
        t = pb.Task(id=tid, node_id="n1", desired_state=pb.RUNNING)
        t.status.state = pb.ASSIGNED
        rev = await w.apply(objects.tasks.create(t))
    assert await cache.wait_for(rev, 2)


def test_submit_keeps_the_latest_state_per_task():
    w = StatusWriter(MemoryStore(), None)  # type: ignore[arg-type]
    w.submit("a", pb.TaskStatus(state=pb.RUNNING))
    w.submit("a", pb.TaskStatus(state=pb.STARTING))
    w.submit("b", pb.TaskStatus(state=pb.ACCEPTED))
    w.submit("b", pb.TaskStatus(state=pb.FAILED, err="exit 1"))
    assert {tid: st.state for tid, st in w.pending.items()} == {"a": pb.RUNNING, "b": pb.FAILED}
    assert w.pending["b"].err == "exit 1"


async def test_many_reports_are_written_in_few_transactions(cache: ClusterCache):
    tids = [f"t{i:03}" for i in range(300)]
    await add_tasks(cache, *tids)

    calls = 0
    real_txn = cache.store.txn

    async def counting_txn(*args, **kw):
        nonlocal calls
        calls += 1
        return await real_txn(*args, **kw)

    cache.store.txn = counting_txn  # type: ignore[method-assign]
    w = StatusWriter(cache.store, cache)
    for tid in tids:
        w.submit(tid, pb.TaskStatus(state=pb.RUNNING))
    runner = asyncio.create_task(w.run())
    try:
        await asyncio.wait_for(w.flushed(), 2)
    finally:
        runner.cancel()
    assert len(await objects.statuses.list(cache.store)) == 300
    assert calls == 3, "128 reports per transaction"


async def test_a_report_for_a_task_deleted_meanwhile_is_dropped_and_the_rest_land(cache: ClusterCache):
    await add_tasks(cache, "a", "b", "c")
    w = StatusWriter(cache.store, cache)
    for tid in "abc":
        w.submit(tid, pb.TaskStatus(state=pb.RUNNING))
    await Writer(cache.store).apply(objects.tasks.delete("b", cache.rev("task", "b")))  # the cache has not seen it yet
    runner = asyncio.create_task(w.run())
    try:
        await asyncio.wait_for(w.flushed(), 2)
    finally:
        runner.cancel()
    assert {k.rsplit("/", 1)[1] for k in cache.store.snapshot() if "task-status" in k} == {"a", "c"}, "no orphan report for b"


async def test_a_failed_write_is_retried(cache: ClusterCache):
    await add_tasks(cache, "a")
    fails = 1
    real_txn = cache.store.txn

    async def flaky(*args, **kw):
        nonlocal fails
        if fails:
            fails -= 1
            raise StoreError("etcd is electing a leader")
        return await real_txn(*args, **kw)

    cache.store.txn = flaky  # type: ignore[method-assign]
    w = StatusWriter(cache.store, cache)
    w.submit("a", pb.TaskStatus(state=pb.RUNNING))
    runner = asyncio.create_task(w.run())
    try:
        for _ in range(200):
            if await objects.statuses.get(cache.store, "a") is not None:
                break
            await asyncio.sleep(0.01)
    finally:
        runner.cancel()
    assert (await objects.statuses.get(cache.store, "a")).obj.state == pb.RUNNING and fails == 0


async def test_flushed_returns_at_once_when_nothing_waits():
    w = StatusWriter(MemoryStore(), None)  # type: ignore[arg-type]
    await asyncio.wait_for(w.flushed(), 0.1)


async def test_reports_made_while_a_write_is_under_way_go_together_in_the_next_one(cache: ClusterCache):
    """No timer: a report is written as soon as the writer is free, and what came meanwhile is one batch."""
    await add_tasks(cache, "a", "b", "c", "d")
    release = asyncio.Event()
    batches: list[int] = []
    real_txn = cache.store.txn

    async def slow_txn(compares, success, *args, **kw):
        batches.append(len(success))
        await release.wait()
        return await real_txn(compares, success, *args, **kw)

    cache.store.txn = slow_txn  # type: ignore[method-assign]
    w = StatusWriter(cache.store, cache)
    runner = asyncio.create_task(w.run())
    try:
        w.submit("a", pb.TaskStatus(state=pb.RUNNING))
        for _ in range(20):  # a few turns of the loop, no timer: the lone report is on its way
            await asyncio.sleep(0)
        assert batches == [1]
        for tid in "bcd":
            w.submit(tid, pb.TaskStatus(state=pb.RUNNING))
        release.set()
        await asyncio.wait_for(w.flushed(), 5)
    finally:
        runner.cancel()
    assert batches == [1, 3], "b, c and d waited for a's write, then went as one"
    assert len(await objects.statuses.list(cache.store)) == 4
