"""The leader's loops together on the in-memory store: the cache follows the store's watch, the orchestrator
makes a service's tasks, the scheduler places them, and both settle (no write once nothing changes).

What the integration suite checks on etcd, here in a few milliseconds per case: spread over ready nodes,
scaling down, a task that fits nowhere kept PENDING with its reason written once, a node that is not
ready left out, a removed service's tasks told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from shoal.manager.cache import ClusterCache
from shoal.manager.orchestrator.loop import Orchestrator
from shoal.manager.scheduler.loop import Scheduler
from shoal.manager.store import keys
from shoal.manager.store.memory import MemoryStore
from shoal.manager.store.writes import Writer
from shoal.proto import types_pb2 as pb
from tests.timing import eventually

GiB = 1 << 30


@dataclass
class Plane:
    store: MemoryStore
    cache: ClusterCache
    tasks: list[asyncio.Task]

    def live(self, service_id: str) -> list[pb.Task]:
        return [t for t in self.cache.tasks_of(service_id) if t.desired_state == pb.RUNNING]

    def state(self, t: pb.Task) -> int:
        return self.cache.status(t).state


async def _node(store: MemoryStore, nid: str, ready: bool = True, memory: int = 4 * GiB) -> None:
    node = pb.Node(id=nid, description=pb.NodeDescription(hostname=nid, nano_cpus=4_000_000_000, memory_bytes=memory))
    node.spec.availability = pb.NodeSpec.ACTIVE
    await store.put(keys.key("node", nid), keys.encode(node))
    if ready:
        await store.put(keys.key("session", nid), keys.encode(pb.NodeSession()))


def _service(sid: str, replicas: int, memory: int = 0) -> pb.Service:
    spec = pb.ServiceSpec(name=sid, replicas=replicas)
    spec.container.image = "busybox"
    if memory:
        spec.resources.reservations.memory_bytes = memory
    return pb.Service(id=sid, spec=spec)


@pytest.fixture
async def plane() -> AsyncIterator[Plane]:
    store = MemoryStore()
    await _node(store, "n1")
    await _node(store, "n2")
    await _node(store, "n3", ready=False)
    cache = ClusterCache(store)
    writer = Writer(store)
    runs = [asyncio.create_task(cache.run())]
    await asyncio.wait_for(cache.ready.wait(), 5)
    runs += [asyncio.create_task(Orchestrator(cache, writer, node_grace_s=0.0).run()),
             asyncio.create_task(Scheduler(cache, writer).run())]
    try:
        yield Plane(store, cache, runs)
    finally:
        for t in runs:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await store.close()


async def _write(store: MemoryStore, svc: pb.Service) -> None:
    await store.put(keys.key("service", svc.id), keys.encode(svc))


async def test_a_services_tasks_are_made_and_spread_over_the_ready_nodes(plane: Plane):
    await _write(plane.store, _service("web", 4))

    async def placed() -> list[pb.Task] | None:
        live = plane.live("web")
        return live if len(live) == 4 and all(plane.state(t) == pb.ASSIGNED for t in live) else None

    tasks = await eventually(placed, 10, "4 assigned tasks")
    assert sorted(t.slot for t in tasks) == [1, 2, 3, 4]
    per_node = sorted(sum(t.node_id == n for t in tasks) for n in ("n1", "n2"))
    assert per_node == [2, 2], "spread evenly"
    assert not any(t.node_id == "n3" for t in tasks), "a node without a session gets nothing"
    assert all("scheduler assigned task to node n" in plane.cache.status(t).message for t in tasks)


async def test_the_loops_settle_once_the_service_is_placed(plane: Plane):
    await _write(plane.store, _service("web", 2))
    await eventually(lambda: _all_assigned(plane, "web", 2), 10, "2 assigned tasks")
    await asyncio.sleep(0.3)
    rev = (await plane.store.range("/")).revision
    await asyncio.sleep(0.5)
    assert (await plane.store.range("/")).revision == rev, "no write while nothing changes"


async def test_scaling_down_stops_the_highest_slots(plane: Plane):
    await _write(plane.store, _service("web", 3))
    await eventually(lambda: _all_assigned(plane, "web", 3), 10, "3 assigned tasks")
    svc = _service("web", 1)
    svc.meta.version = 2
    await _write(plane.store, svc)

    async def one_left() -> bool:
        return [t.slot for t in plane.live("web")] == [1]

    await eventually(one_left, 10, "one running slot")
    stopped = [t for t in plane.cache.tasks_of("web") if t.desired_state != pb.RUNNING]
    assert sorted(t.slot for t in stopped) == [2, 3]


async def test_a_task_that_fits_nowhere_stays_pending_with_its_reason_written_once(plane: Plane):
    await _write(plane.store, _service("big", 1, memory=64 * GiB))

    async def explained() -> pb.Task | None:
        live = plane.live("big")
        return live[0] if live and plane.state(live[0]) == pb.PENDING and plane.cache.status(live[0]).err else None

    t = await eventually(explained, 10, "a pending task with its reason")
    err = plane.cache.status(t).err
    assert "no suitable node" in err and "memory" in err, err
    rev = (await plane.store.range("/")).revision
    await asyncio.sleep(0.5)
    assert (await plane.store.range("/")).revision == rev, "the same reason is not written again"


async def test_a_node_that_becomes_ready_takes_the_waiting_tasks(plane: Plane):
    await _write(plane.store, _service("big", 1, memory=6 * GiB))
    await eventually(lambda: _pending(plane, "big"), 10, "the task waits")
    await _node(plane.store, "huge", memory=8 * GiB)

    async def on_huge() -> bool:
        live = plane.live("big")
        return bool(live) and live[0].node_id == "huge" and plane.state(live[0]) == pb.ASSIGNED

    await eventually(on_huge, 10, "the task placed on the new node")


async def test_removing_a_service_tells_its_tasks_to_stop(plane: Plane):
    await _write(plane.store, _service("gone", 2))
    await eventually(lambda: _all_assigned(plane, "gone", 2), 10, "2 assigned tasks")
    await plane.store.delete(keys.key("service", "gone"))

    async def stopping() -> bool:
        ts = plane.cache.tasks_of("gone")
        return bool(ts) and all(t.desired_state in (pb.SHUTDOWN, pb.REMOVE) for t in ts) or not ts

    await eventually(stopping, 10, "every task told to stop")


async def _all_assigned(plane: Plane, sid: str, n: int) -> bool:
    live = plane.live(sid)
    return len(live) == n and all(plane.state(t) == pb.ASSIGNED for t in live)


async def _pending(plane: Plane, sid: str) -> bool:
    live = plane.live(sid)
    return bool(live) and plane.state(live[0]) == pb.PENDING

