"""The shared placement view: the nodes with their load as the scheduler and the rebalancer see them."""

from __future__ import annotations

import pytest

from shoal.manager.cache import ClusterCache
from shoal.manager.placement import FAILURE_WINDOW_NS, Filter, keeps, snapshot
from shoal.manager.store import objects
from shoal.manager.store.memory import MemoryStore
from shoal.manager.store.writes import Writer
from shoal.proto import types_pb2 as pb
from shoal.views import NodeInfo

NOW = 10**18


def node(nid: str, availability: int = pb.NodeSpec.ACTIVE, **labels: str) -> pb.Node:
    n = pb.Node(id=nid)
    n.spec.availability = availability  # type: ignore[assignment]
    n.spec.labels.update(labels)
    n.description.memory_bytes = 1 << 30
    return n


def task(tid: str, node_id: str, state: int, svc: str = "s1", desired: int = pb.RUNNING, memory: int = 0, at: int = NOW) -> pb.Task:
    t = pb.Task(id=tid, service_id=svc, node_id=node_id, desired_state=desired)  # type: ignore[arg-type]
    t.status.state = state  # type: ignore[assignment]
    t.status.timestamp_ns = at
    t.spec.resources.reservations.memory_bytes = memory
    return t


@pytest.fixture
async def cache():
    store = MemoryStore()
    c = ClusterCache(store)
    yield c
    await store.close()


async def load(cache: ClusterCache, nodes: list[pb.Node], tasks: list[pb.Task], ready: tuple[str, ...] = (), reports: dict[str, int] | None = None) -> None:
    w = Writer(cache.store)
    for n in nodes:
        await w.apply(objects.nodes.create(n))
    for nid in ready:
        await w.apply(objects.sessions.put(pb.NodeSession(node_id=nid)))
    for t in tasks:
        await w.apply(objects.tasks.create(t))
    for tid, state in (reports or {}).items():
        await w.apply(objects.report(tid, pb.TaskStatus(state=state, timestamp_ns=NOW)))  # type: ignore[arg-type]
    await cache.load()


async def test_snapshot_counts_live_tasks_and_their_reservations(cache: ClusterCache):
    await load(
        cache,
        [node("a"), node("b")],
        [task("t1", "a", pb.RUNNING, memory=100), task("t2", "a", pb.ASSIGNED, svc="s2", memory=50), task("t3", "b", pb.COMPLETE)],
        ready=("a",),
    )
    nodes, pending = snapshot(cache, NOW)
    assert [n.id for n in nodes] == ["a", "b"] and pending == []
    a, b = nodes
    assert a.ready and not b.ready
    assert (a.tasks_total, a.reserved_memory, dict(a.tasks_by_service)) == (2, 150, {"s1": 1, "s2": 1})
    assert b.tasks_total == 0, "a task that ended holds nothing"


async def test_snapshot_uses_the_effective_status(cache: ClusterCache):
    await load(cache, [node("a")], [task("t1", "a", pb.ASSIGNED, memory=100), task("t2", "", pb.PENDING)], reports={"t1": pb.FAILED})
    nodes, pending = snapshot(cache, NOW)
    assert nodes[0].tasks_total == 0 and nodes[0].failures["s1"] == 1, "the agent's FAILED report counts, not the task's ASSIGNED"
    assert [t.id for t in pending] == ["t2"]


async def test_only_tasks_desired_running_wait_for_a_node(cache: ClusterCache):
    await load(cache, [], [task("want", "", pb.PENDING), task("unwanted", "", pb.PENDING, desired=pb.SHUTDOWN)])
    assert [t.id for t in snapshot(cache, NOW)[1]] == ["want"]


async def test_a_task_shut_down_while_still_running_frees_its_node(cache: ClusterCache):
    await load(cache, [node("a")], [task("t1", "a", pb.RUNNING, desired=pb.SHUTDOWN, memory=100)])
    assert snapshot(cache, NOW)[0][0].reserved_memory == 0


async def test_only_recent_failures_count_against_a_node(cache: ClusterCache):
    old = NOW - FAILURE_WINDOW_NS - 1
    await load(cache, [node("a")], [task("recent", "a", pb.REJECTED), task("old", "a", pb.FAILED, at=old), task("done", "a", pb.SHUTDOWN)])
    assert snapshot(cache, NOW)[0][0].failures["s1"] == 1


async def test_tasks_on_nodes_that_are_gone_are_ignored(cache: ClusterCache):
    await load(cache, [node("a")], [task("t1", "removed-node", pb.RUNNING)])
    nodes, pending = snapshot(cache, NOW)
    assert [n.tasks_total for n in nodes] == [0] and pending == []


def info(n: pb.Node, ready: bool = True) -> NodeInfo:
    return NodeInfo(n, ready=ready)


def spec(memory: int = 0, constraints: tuple[str, ...] = (), max_per_node: int = 0) -> pb.ServiceSpec:
    s = pb.ServiceSpec(name="web")
    s.resources.reservations.memory_bytes = memory
    s.placement.constraints.extend(constraints)
    s.placement.max_replicas_per_node = max_per_node
    return s


@pytest.mark.parametrize(
    ("n", "s", "why"),
    [
        (info(node("a")), spec(), None),
        (info(node("a"), ready=False), spec(), "are not ready"),
        (info(node("a", pb.NodeSpec.DRAIN)), spec(), "are not available for new tasks (drain or pause)"),
        (info(node("a", pb.NodeSpec.PAUSE)), spec(), "are not available for new tasks (drain or pause)"),
        (info(node("a")), spec(memory=2 << 30), "lack 2GiB memory"),
        (info(node("a", zone="west")), spec(constraints=("node.labels.zone==east",)), "fail node.labels.zone==east"),
    ],
)
def test_a_filter_says_why_a_node_does_not_fit(n, s, why):
    assert Filter(s, "s1").check(n) == why


def test_the_per_node_limit_is_checked_against_the_service_s_own_tasks():
    n = info(node("a"))
    f = Filter(spec(max_per_node=1), "s1")
    assert f.fits(n)
    n.tasks_by_service["other"] += 3
    assert f.fits(n), "other services' tasks do not count"
    n.tasks_by_service["s1"] += 1
    assert not f.fits(n) and f.check(n) == "already run max replicas per node (1)"


@pytest.mark.parametrize(
    ("availability", "ready", "labels", "kept"),
    [
        (pb.NodeSpec.ACTIVE, True, {"zone": "east"}, True),
        (pb.NodeSpec.PAUSE, True, {"zone": "east"}, True),  # paused: what runs there stays
        (pb.NodeSpec.DRAIN, True, {"zone": "east"}, False),
        (pb.NodeSpec.ACTIVE, False, {"zone": "east"}, False),  # down
        (pb.NodeSpec.ACTIVE, True, {"zone": "west"}, False),  # no longer matches the constraints
    ],
)
def test_where_a_global_services_tasks_may_stay(availability, ready, labels, kept):
    from shoal.constraints import parse_constraints

    assert keeps(node("a", availability, **labels), ready, parse_constraints(["node.labels.zone==east"])) is kept
    assert keeps(None, True, []) is False, "a removed node keeps nothing"
