"""A manager outage does not reshuffle the cluster: a new leader's grace and mass-disruption protection.

The pure rules (shoal.liveness) on a fake clock, then the orchestrator on the in-memory store: a new
leader replaces no task of a node without a session until the node had its full grace; when more than
half of the nodes are down at once their tasks are replaced one node per interval.
"""

from __future__ import annotations

import asyncio

import pytest

from shoal import liveness
from shoal.liveness import Liveness
from shoal.manager.cache import ClusterCache
from shoal.manager.orchestrator import replicated
from shoal.manager.orchestrator.loop import Orchestrator
from shoal.manager.reactor import ALL
from shoal.manager.store import keys
from shoal.manager.store.memory import MemoryStore
from shoal.manager.store.writes import Writer
from shoal.proto import types_pb2 as pb
from shoal.views import TaskView


def test_a_new_leader_counts_no_node_down_during_its_grace():
    lv = Liveness(grace_s=4.0, since=100.0)
    assert lv.observe({"a", "b"}, 3, now=101.0) is None
    assert not lv.may_replace("a", 101.0) and lv.next_change(101.0) == 104.0
    lv.observe({"a"}, 3, now=104.5)  # b came back; a did not within its grace
    assert lv.may_replace("a", 104.5) and not lv.may_replace("b", 104.5)
    assert lv.next_change(104.5) is None


def test_mass_disruption_releases_one_node_per_interval_oldest_first():
    lv = Liveness(grace_s=1.0, since=0.0, interval_s=30.0)
    assert lv.observe({"d1"}, 4, now=10.0) is None
    assert lv.may_replace("d1", 10.0), "one of four down: business as usual"
    note = lv.observe({"d1", "d2", "d3"}, 4, now=20.0)
    assert note is not None and note.startswith("mass disruption: 3 of 4 nodes down")
    assert lv.may_replace("d1", 20.0), "a node that was down before the disruption stays released"
    assert not lv.may_replace("d2", 20.0) and not lv.may_replace("d3", 20.0)
    assert lv.next_change(20.0) == 50.0
    lv.observe({"d1", "d2", "d3"}, 4, now=50.0)
    assert lv.may_replace("d2", 50.0) and not lv.may_replace("d3", 50.0), "d2 went down first (same instant: by id)"
    assert lv.observe({"d1"}, 4, now=55.0) == "mass disruption over: down nodes' tasks are replaced again"
    assert lv.released == {"d1"}


def test_a_node_that_comes_back_is_forgotten():
    lv = Liveness(grace_s=0.0, since=0.0, interval_s=1.0)
    lv.observe({"a", "b"}, 3, now=1.0)
    lv.observe({"a", "b"}, 3, now=2.0)
    assert lv.released == {"a"}
    lv.observe({"b"}, 3, now=3.0)
    assert lv.released == {"b"} and "a" not in lv.down_since


@pytest.mark.parametrize(("down", "total", "expected"), [(0, 1, False), (1, 1, False), (1, 2, False), (2, 3, True), (2, 4, False), (3, 4, True)])
def test_disrupted_means_more_than_half(down: int, total: int, expected: bool):
    assert liveness.disrupted(down, total) is expected


def test_replicas_are_created_in_bounded_batches():
    svc = pb.Service(id="s")
    svc.spec.replicas = replicated.CREATE_BATCH + 7
    acts = replicated.reconcile(svc, [], lambda _n: True, now_ns=1000)
    assert len(acts.create) == replicated.CREATE_BATCH and acts.wake_at_ns == 1000, "the next pass goes on at once"
    made = [TaskView(t, t.status) for t in acts.create]
    rest = replicated.reconcile(svc, made, lambda _n: True, now_ns=2000)
    assert len(rest.create) == 7 and rest.wake_at_ns is None


async def _cluster(nodes: list[str], ready: list[str]) -> ClusterCache:
    store = MemoryStore()
    svc = pb.Service(id="s")
    svc.spec.name, svc.spec.replicas = "web", len(nodes)
    await store.put(keys.key("service", "s"), keys.encode(svc))
    for i, nid in enumerate(nodes, start=1):
        await store.put(keys.key("node", nid), keys.encode(pb.Node(id=nid)))
        t = pb.Task(id=f"t{i}", service_id="s", node_id=nid, slot=i, desired_state=pb.RUNNING)
        await store.put(keys.key("task", t.id), keys.encode(t))
        await store.put(keys.key("status", t.id), keys.encode(pb.TaskStatus(state=pb.RUNNING)))
    for nid in ready:
        await store.put(keys.key("session", nid), keys.encode(pb.NodeSession(node_id=nid)))
    cache = ClusterCache(store)
    await cache.load()
    return cache


def _shut_down(cache: ClusterCache) -> set[str]:
    """The nodes whose tasks the orchestrator asked to shut down (to replace them elsewhere)."""
    return {t.node_id for t in cache.tasks().values() if t.desired_state == pb.SHUTDOWN}


async def test_a_new_leader_keeps_the_tasks_of_nodes_not_back_yet():
    cache = await _cluster(["n1", "n2"], ready=["n1"])
    orch = Orchestrator(cache, Writer(cache.store), node_grace_s=0.3)
    rev, wake = await orch._pass({ALL})
    assert rev == 0 and wake is not None, "nothing replaced; a pass is due when the grace ends"
    await asyncio.sleep(0.35)
    rev, _ = await orch._pass({ALL})
    await cache.load()
    assert rev and _shut_down(cache) == {"n2"}, "after its grace the node is down and its task replaced"


async def test_more_than_half_down_at_once_replaces_one_node_per_interval():
    cache = await _cluster(["n1", "n2", "n3", "n4"], ready=["n1"])
    orch = Orchestrator(cache, Writer(cache.store), node_grace_s=0.0)
    orch.liveness.interval_s = 3600.0
    _rev, wake = await orch._pass({ALL})
    await cache.load()
    assert not _shut_down(cache) and wake is not None, "3 of 4 down at once: nothing replaced yet, a release is scheduled"
    assert [(e.type, e.action) for e in await _events(cache)] == [("cluster", "disruption")]
    orch.liveness.last_release -= 3600.0
    rev, _ = await orch._pass({ALL})
    await cache.load()
    assert rev and len(_shut_down(cache)) == 1, "one node released per interval"
    released = [e for e in await _events(cache) if e.type == "node"]
    assert len(released) == 1 and released[0].action == "down" and released[0].actor_id in _shut_down(cache)
    assert "mass disruption" in released[0].message


async def _events(cache: ClusterCache) -> list[pb.Event]:
    """The events the orchestrator wrote, oldest first."""
    from shoal.manager.store import objects

    return [objects.events.decode(kv.value) for kv in (await cache.store.range(keys.EVENTS)).kvs]


async def test_a_disruption_that_ends_is_an_event_and_a_lone_down_node_is_one_too():
    cache = await _cluster(["n1", "n2", "n3"], ready=["n1"])
    orch = Orchestrator(cache, Writer(cache.store), node_grace_s=0.0)
    await orch._pass({ALL})  # 2 of 3 down
    await cache.store.put(keys.key("session", "n2"), keys.encode(pb.NodeSession(node_id="n2")))
    await cache.load()
    await orch._pass({ALL})  # n2 is back: only n3 down, replaced as usual
    events = await _events(cache)
    assert [(e.type, e.action, e.actor_id) for e in events] == [
        ("cluster", "disruption", ""), ("cluster", "disruption-over", ""), ("node", "down", "n3"),
    ]  # fmt: skip
    assert all(e.time_ns > 0 and e.message for e in events)
    lease = (await cache.store.get(keys.EVENTS + events[0].id)).lease
    assert lease, "events ride on a lease: etcd forgets them after a day"
