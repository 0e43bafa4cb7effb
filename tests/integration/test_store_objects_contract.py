"""The typed store API's contract, run on MemoryStore and on a real etcd: the writes it builds mean the same on both.

Indexes and owned keys, the fence, batches at etcd's operation limit, the conflict-retry loop and the
cache's wait_for: the unit tests run them on the fake; here etcd has the last word.
"""

from __future__ import annotations

import asyncio

import pytest

from shoal.manager.cache import ClusterCache
from shoal.manager.store import keys, objects
from shoal.manager.store.base import Store
from shoal.manager.store.writes import Conflict, Fence, Writer
from shoal.proto import types_pb2 as pb


def service(sid: str, name: str) -> pb.Service:
    svc = pb.Service(id=sid)
    svc.spec.name = name
    return svc


def task(tid: str) -> pb.Task:
    return pb.Task(id=tid, service_id="s1", desired_state=pb.RUNNING)


async def test_a_service_and_its_name_are_written_together_and_the_name_is_unique(store: Store) -> None:
    w = Writer(store)
    rev = await w.apply(objects.services.create(service("s1", "web")))
    with pytest.raises(Conflict):
        await w.apply(objects.services.create(service("s2", "web")))
    assert await objects.services.get(store, "s2") is None
    found = await objects.services.lookup(store, objects.SERVICE_NAME, "web")
    assert found is not None and (found.obj.id, found.rev) == ("s1", rev)
    await w.apply(objects.services.delete(found.obj))
    assert await store.get(keys.service_name_key("web")) is None


async def test_a_stale_update_conflicts_and_a_fresh_one_lands(store: Store) -> None:
    w = Writer(store)
    rev = await w.apply(objects.nodes.create(pb.Node(id="n1")))
    new_rev = await w.apply(objects.nodes.update(pb.Node(id="n1", spec=pb.NodeSpec(availability=pb.NodeSpec.DRAIN)), rev))
    with pytest.raises(Conflict):
        await w.apply(objects.nodes.update(pb.Node(id="n1"), rev))
    got = await objects.nodes.get(store, "n1")
    assert got is not None and got.rev == new_rev and got.obj.spec.availability == pb.NodeSpec.DRAIN


async def test_deletes_take_owned_keys_with_them(store: Store) -> None:
    w = Writer(store)
    trev = await w.apply(objects.tasks.create(task("t1")))
    await w.apply(objects.report("t1", pb.TaskStatus(state=pb.RUNNING)))
    nrev = await w.apply(objects.nodes.create(pb.Node(id="n1")))
    await w.apply(objects.sessions.put(pb.NodeSession(node_id="n1", session_id="x")))
    await w.apply(objects.tasks.delete("t1", trev))
    await w.apply(objects.nodes.delete("n1", nrev))
    assert (await store.range(keys.PREFIX)).kvs == []


async def test_a_report_on_a_missing_task_and_a_stale_session_end_are_refused(store: Store) -> None:
    w = Writer(store)
    with pytest.raises(Conflict):
        await w.apply(objects.report("ghost", pb.TaskStatus(state=pb.RUNNING)))
    await w.apply(objects.sessions.put(pb.NodeSession(node_id="n1", session_id="new")))
    with pytest.raises(Conflict):
        await w.apply(objects.end_session(pb.NodeSession(node_id="n1", session_id="old")))
    assert (await objects.sessions.get(store, "n1")).obj.session_id == "new"


async def test_a_fenced_writer_stops_writing_once_another_leader_holds_the_key(store: Store) -> None:
    w = Writer(store)
    lease = await store.lease_grant(30)
    won_at = await w.apply(objects.campaign("m1", lease))
    leader = Writer(store, Fence(keys.LEADER, won_at))
    await leader.apply(objects.tasks.create(task("t1")))
    await store.lease_revoke(lease)  # m1 lost its lease; m2 wins
    await w.apply(objects.campaign("m2", await store.lease_grant(30)))
    assert await objects.leader_of(store) == "m2"
    with pytest.raises(Conflict):
        await leader.apply(objects.tasks.create(task("t2")))
    assert [v.obj.id for v in await objects.tasks.list(store)] == ["t1"]


async def test_batches_respect_the_operation_limit_under_a_fence(store: Store) -> None:
    w = Writer(store)
    won_at = await w.apply(objects.campaign("m1", await store.lease_grant(30)))
    leader = Writer(store, Fence(keys.LEADER, won_at))
    writes = [objects.tasks.create(task(f"t{i:04}")) for i in range(400)]
    applied, rev = await leader.apply_batches(writes)
    assert applied == 400
    assert len(await objects.tasks.list(store)) == 400
    assert rev == (await store.range(keys.PREFIX)).revision


async def test_apply_each_lands_every_write_that_holds(store: Store) -> None:
    w = Writer(store)
    for tid in ("a", "c"):
        await w.apply(objects.tasks.create(task(tid)))
    await w.apply_each([objects.report(tid, pb.TaskStatus(state=pb.RUNNING)) for tid in ("a", "b", "c")])
    assert sorted(k.key.rsplit("/", 1)[1] for k in (await store.range(keys.KINDS["status"][0])).kvs) == ["a", "c"]


async def test_update_retrying_wins_against_concurrent_writers(store: Store) -> None:
    w = Writer(store)
    await w.apply(objects.nodes.create(pb.Node(id="n1")))

    def add_label(i: int):
        def mutate(n: pb.Node | None) -> pb.Node:
            assert n is not None
            n.spec.labels[f"k{i}"] = "v"
            return n

        return mutate

    await asyncio.gather(*(objects.nodes.update_retrying(w, "n1", add_label(i), attempts=50) for i in range(8)))
    got = await objects.nodes.get(store, "n1")
    assert sorted(got.obj.spec.labels) == [f"k{i}" for i in range(8)], "no update was lost to a race"


async def test_wait_for_returns_once_the_cache_has_the_write(store: Store) -> None:
    cache = ClusterCache(store)
    runner = asyncio.create_task(cache.run())
    try:
        await asyncio.wait_for(cache.ready.wait(), 5)
        rev = await Writer(store).apply(objects.services.create(service("s1", "web")))
        assert await cache.wait_for(rev, timeout=5)
        assert cache.get("service", "s1") is not None
        assert await cache.wait_for(rev + 100, timeout=0.1) is False
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
