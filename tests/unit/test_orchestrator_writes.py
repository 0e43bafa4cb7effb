"""The orchestrators' actions as store writes: compared on the task as decided, applied as decided."""

from __future__ import annotations

import pytest

from shoal.manager.cache import ClusterCache
from shoal.manager.orchestrator.types import Actions, new_task
from shoal.manager.orchestrator.writes import actions_to_writes
from shoal.manager.store import objects
from shoal.manager.store.memory import MemoryStore
from shoal.manager.store.writes import Conflict, Writer
from shoal.proto import types_pb2 as pb


@pytest.fixture
async def cache():
    store = MemoryStore()
    c = ClusterCache(store)
    await c.load()
    yield c
    await store.close()


def service() -> pb.Service:
    svc = pb.Service(id="s1", spec_version=1)
    svc.spec.name = "web"
    svc.spec.replicas = 2
    return svc


async def stored(cache: ClusterCache, *tasks: pb.Task) -> None:
    w = Writer(cache.store)
    for t in tasks:
        await w.apply(objects.tasks.create(t))
    await cache.load()


async def apply(cache: ClusterCache, acts: Actions) -> None:
    w = Writer(cache.store)
    for write in actions_to_writes(cache, acts):
        await w.apply(write)
    await cache.load()


async def test_new_tasks_are_created_pending(cache: ClusterCache):
    t = new_task(service(), 1, 1000)
    await apply(cache, Actions(create=[t]))
    got = cache.get("task", t.id)
    assert got.status.state == pb.PENDING and got.slot == 1 and got.desired_state == pb.RUNNING


async def test_a_task_is_created_only_once(cache: ClusterCache):
    t = new_task(service(), 1, 1000)
    await apply(cache, Actions(create=[t]))
    with pytest.raises(Conflict):
        await Writer(cache.store).apply(actions_to_writes(cache, Actions(create=[t]))[0])


async def test_shutting_down_a_task_that_never_reached_a_node_ends_it_here(cache: ClusterCache):
    t = new_task(service(), 1, 1000)
    await stored(cache, t)
    await apply(cache, Actions(set_desired={t.id: pb.SHUTDOWN}))
    got = cache.get("task", t.id)
    assert got.desired_state == pb.SHUTDOWN
    assert got.status.state == pb.SHUTDOWN and "before it was scheduled" in got.status.message, "no agent will ever report on it"
    assert got.meta.updated_at_ns > t.meta.updated_at_ns


async def test_shutting_down_a_placed_task_leaves_its_status_to_the_agent(cache: ClusterCache):
    t = new_task(service(), 1, 1000, node_id="n1")
    t.status.state = pb.ASSIGNED
    await stored(cache, t)
    await apply(cache, Actions(set_desired={t.id: pb.SHUTDOWN}))
    got = cache.get("task", t.id)
    assert got.desired_state == pb.SHUTDOWN and got.status.state == pb.ASSIGNED


async def test_a_task_whose_report_says_it_reached_a_node_is_not_ended_here(cache: ClusterCache):
    t = new_task(service(), 1, 1000)  # the task itself still says PENDING...
    await stored(cache, t)
    await Writer(cache.store).apply(objects.report(t.id, pb.TaskStatus(state=pb.RUNNING)))  # ...its report does not
    await cache.load()
    await apply(cache, Actions(set_desired={t.id: pb.SHUTDOWN}))
    assert cache.get("task", t.id).status.state == pb.PENDING


async def test_a_desired_state_already_set_writes_nothing(cache: ClusterCache):
    t = new_task(service(), 1, 1000)
    await stored(cache, t)
    assert actions_to_writes(cache, Actions(set_desired={t.id: pb.RUNNING, "gone": pb.SHUTDOWN})) == []


async def test_a_decision_on_a_task_that_changed_since_is_refused(cache: ClusterCache):
    t = new_task(service(), 1, 1000)
    await stored(cache, t)
    writes = actions_to_writes(cache, Actions(set_desired={t.id: pb.SHUTDOWN}))
    moved = pb.Task()
    moved.CopyFrom(t)
    moved.node_id = "n1"
    await Writer(cache.store).apply(objects.tasks.update(moved, cache.rev("task", t.id)))  # the scheduler got there first
    with pytest.raises(Conflict):
        await Writer(cache.store).apply(writes[0])


async def test_deleting_a_task_takes_its_report(cache: ClusterCache):
    t = new_task(service(), 1, 1000)
    await stored(cache, t)
    await Writer(cache.store).apply(objects.report(t.id, pb.TaskStatus(state=pb.FAILED)))
    await cache.load()
    await apply(cache, Actions(delete=[t.id]))
    assert cache.get("task", t.id) is None and cache.get("status", t.id) is None
