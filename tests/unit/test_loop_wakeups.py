"""Which cache changes wake the scheduler and the orchestrator, and how the reactor spaces its passes.

After a big deployment every task reports several transitions; those that change no decision must not
wake a pass over everything (the scale benchmark's 10,000-task burst depends on it).
"""

import asyncio

from shoal.manager.cache import ClusterCache
from shoal.manager.orchestrator.loop import Orchestrator
from shoal.manager.reactor import ALL, Reactor, debounce_s
from shoal.manager.scheduler.loop import Scheduler
from shoal.manager.store import keys
from shoal.manager.store.memory import MemoryStore
from shoal.manager.store.writes import Writer
from shoal.proto import types_pb2 as pb


async def _loaded(*tasks: pb.Task, services: tuple[pb.Service, ...] = ()) -> ClusterCache:
    store = MemoryStore()
    for t in tasks:
        await store.put(keys.key("task", t.id), keys.encode(t))
    for s in services:
        await store.put(keys.key("service", s.id), keys.encode(s))
    cache = ClusterCache(store)
    await cache.load()
    return cache


def _task(tid: str, state: int, svc: str = "s1") -> pb.Task:
    t = pb.Task(id=tid, service_id=svc, node_id="n1" if state >= pb.ASSIGNED else "", desired_state=pb.RUNNING, slot=1)
    t.status.state = state
    return t


async def test_scheduler_wakes_for_nodes_always_and_for_tasks_only_while_some_wait():
    cache = await _loaded(_task("t1", pb.ASSIGNED))
    sched = Scheduler(cache, Writer(cache.store))
    sched.on_change("status", "t1", pb.TaskStatus(state=pb.RUNNING))
    sched.on_change("task", "t1", cache.get("task", "t1"))
    assert sched.reactor.dirty == set(), "nothing pending: reports and task updates change no placement"
    sched.on_change("session", "n1", None)
    assert sched.reactor.dirty == {ALL}
    sched.reactor.dirty.clear()
    cache.pending.add("t2")
    sched.on_change("status", "t1", pb.TaskStatus(state=pb.FAILED))
    assert sched.reactor.dirty == {ALL}, "a task waits: a freed node may now fit it"
    assert await Scheduler(await _loaded(_task("t1", pb.RUNNING)), Writer(cache.store))._pass({ALL}) == (0, None)


async def test_orchestrator_ignores_reports_of_tasks_still_starting():
    svc = pb.Service(id="s1")
    svc.spec.replicas = 1
    reb = pb.Service(id="s2")
    reb.spec.replicas, reb.spec.rebalance = 1, True
    cache = await _loaded(_task("t1", pb.ASSIGNED), _task("t2", pb.ASSIGNED, "s2"), services=(svc, reb))
    orch = Orchestrator(cache, Writer(cache.store))
    for st in (pb.ACCEPTED, pb.STARTING, pb.RUNNING):
        orch.on_change("status", "t1", pb.TaskStatus(state=st))
    assert orch.reactor.dirty == set()
    orch.on_change("status", "t1", pb.TaskStatus(state=pb.FAILED))
    assert orch.reactor.dirty == {"s1"}, "an ended task may be replaced"
    orch.on_change("status", "t2", pb.TaskStatus(state=pb.RUNNING))
    assert orch.reactor.dirty == {"s1", "s2"}, "rebalancing counts tasks still starting"


async def test_reactor_waits_longer_after_a_long_pass():
    cache = await _loaded()
    cache.ready.set()
    starts: list[float] = []

    async def step(dirty: set[str]) -> tuple[int, None]:
        loop = asyncio.get_running_loop()
        starts.append(loop.time())
        await asyncio.sleep(0.1 if len(starts) == 1 else 0)
        return 0, None

    r = Reactor("t", cache, step, debounce=0.001, max_debounce=0.3)
    runner = asyncio.create_task(r.run())
    try:
        r.mark("a")
        while len(starts) < 1:
            await asyncio.sleep(0.001)
        r.mark("b")  # arrives during the long pass
        while len(starts) < 2:
            await asyncio.sleep(0.005)
        assert starts[1] - starts[0] >= 0.19, "the next pass waited about as long as the last one took"
    finally:
        runner.cancel()


def test_the_wait_before_a_pass_counts_from_the_end_of_the_last_one():
    # a pass of 0.3 s that ended 1 s ago: the loop has been idle long enough, the event is handled at once
    assert debounce_s(now=10.0, last_end=9.0, last_pass=0.3, debounce=0.005, max_debounce=0.5) == 0.005
    # it ended 0.1 s ago: the rest of its length
    assert round(debounce_s(now=9.1, last_end=9.0, last_pass=0.3, debounce=0.005, max_debounce=0.5), 6) == 0.2
    # a pass longer than the cap: never more than the cap
    assert debounce_s(now=9.0, last_end=9.0, last_pass=2.0, debounce=0.005, max_debounce=0.5) == 0.5


async def test_an_event_after_a_quiet_spell_is_not_held_back_by_an_old_long_pass():
    """A rolling update waits for one health report; the pass before it (long ago) was a big one."""
    cache = await _loaded()
    cache.ready.set()
    starts: list[float] = []

    async def step(dirty: set[str]) -> tuple[int, None]:
        loop = asyncio.get_running_loop()
        starts.append(loop.time())
        await asyncio.sleep(0.2 if len(starts) == 1 else 0)
        return 0, None

    r = Reactor("t", cache, step, debounce=0.001, max_debounce=0.5)
    runner = asyncio.create_task(r.run())
    try:
        r.mark("a")
        while len(starts) < 1:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.5)  # the long pass ended 0.3 s ago
        marked = asyncio.get_running_loop().time()
        r.mark("b")
        while len(starts) < 2:
            await asyncio.sleep(0.002)
        assert starts[1] - marked < 0.1, "handled at once, not 0.2 s later"
    finally:
        runner.cancel()
