"""The typed store API on the in-memory store: indexes, owned keys, fences and conflicts kept in one place."""

from __future__ import annotations

import pytest

from shoal.manager.store import keys, objects
from shoal.manager.store.base import MAX_TXN_OPS
from shoal.manager.store.memory import MemoryStore
from shoal.manager.store.writes import Conflict, Fence, Write, Writer, batches
from shoal.proto import images_pb2 as ipb
from shoal.proto import types_pb2 as pb


@pytest.fixture
async def store():
    s = MemoryStore()
    yield s
    await s.close()


def service(sid: str, name: str, replicas: int = 1) -> pb.Service:
    svc = pb.Service(id=sid, spec_version=1)
    svc.spec.name = name
    svc.spec.replicas = replicas
    return svc


def task(tid: str, service_id: str = "s1", node_id: str = "") -> pb.Task:
    return pb.Task(id=tid, service_id=service_id, node_id=node_id, desired_state=pb.RUNNING)


# ---- services and their name index ---------------------------------------------------------------


async def test_creating_a_service_writes_it_and_its_name_index_together(store):
    rev = await Writer(store).apply(objects.services.create(service("s1", "web")))
    got = await objects.services.get(store, "s1")
    assert got is not None and got.obj.spec.name == "web" and got.rev == rev
    assert (await store.get(keys.service_name_key("web"))).value == b"s1"
    found = await objects.services.lookup(store, objects.SERVICE_NAME, "web")
    assert found is not None and found.obj.id == "s1"


async def test_a_second_service_with_a_taken_name_conflicts_and_writes_nothing(store):
    w = Writer(store)
    await w.apply(objects.services.create(service("s1", "web")))
    before = store.snapshot()
    with pytest.raises(Conflict):
        await w.apply(objects.services.create(service("s2", "web")))
    assert store.snapshot() == before
    assert await objects.services.get(store, "s2") is None


async def test_a_service_id_already_taken_conflicts_even_under_a_free_name(store):
    w = Writer(store)
    await w.apply(objects.services.create(service("s1", "web")))
    with pytest.raises(Conflict):
        await w.apply(objects.services.create(service("s1", "api")))
    assert await store.get(keys.service_name_key("api")) is None


async def test_updating_a_service_read_at_an_old_revision_conflicts(store):
    w = Writer(store)
    rev = await w.apply(objects.services.create(service("s1", "web")))
    await w.apply(objects.services.update(service("s1", "web", replicas=2), rev))
    with pytest.raises(Conflict):
        await w.apply(objects.services.update(service("s1", "web", replicas=3), rev))
    assert (await objects.services.get(store, "s1")).obj.spec.replicas == 2


async def test_renaming_a_service_moves_its_index_key_when_the_new_name_is_free(store):
    w = Writer(store)
    old = service("s1", "web")
    rev = await w.apply(objects.services.create(old))
    await w.apply(objects.services.update(service("s1", "www"), rev, old=old))
    assert await store.get(keys.service_name_key("web")) is None
    assert (await store.get(keys.service_name_key("www"))).value == b"s1"


async def test_renaming_onto_a_taken_name_conflicts(store):
    w = Writer(store)
    old = service("s1", "web")
    rev = await w.apply(objects.services.create(old))
    await w.apply(objects.services.create(service("s2", "api")))
    with pytest.raises(Conflict):
        await w.apply(objects.services.update(service("s1", "api"), rev, old=old))
    assert (await store.get(keys.service_name_key("api"))).value == b"s2"
    assert (await store.get(keys.service_name_key("web"))).value == b"s1"


async def test_removing_a_service_frees_its_name(store):
    w = Writer(store)
    svc = service("s1", "web")
    await w.apply(objects.services.create(svc))
    await w.apply(objects.services.delete(svc))
    assert await objects.services.get(store, "s1") is None
    assert await store.get(keys.service_name_key("web")) is None
    await w.apply(objects.services.create(service("s2", "web")))  # the name can be used again


def test_a_kind_with_an_index_refuses_a_delete_by_id_alone():
    with pytest.raises(TypeError, match="index keys"):
        objects.services.delete("s1")


async def test_services_list_sorted_by_id_with_their_revisions(store):
    w = Writer(store)
    r2 = await w.apply(objects.services.create(service("s2", "b")))
    r1 = await w.apply(objects.services.create(service("s1", "a")))
    listed = await objects.services.list(store)
    assert [(v.obj.id, v.rev) for v in listed] == [("s1", r1), ("s2", r2)]
    assert await objects.services.lookup(store, objects.SERVICE_NAME, "nope") is None


# ---- tasks, status reports, nodes and sessions ----------------------------------------------------


async def test_deleting_a_task_takes_its_status_report_with_it(store):
    w = Writer(store)
    rev = await w.apply(objects.tasks.create(task("t1")))
    await w.apply(objects.report("t1", pb.TaskStatus(state=pb.RUNNING)))
    assert (await objects.statuses.get(store, "t1")).obj.state == pb.RUNNING
    await w.apply(objects.tasks.delete("t1", rev))
    assert await objects.tasks.get(store, "t1") is None
    assert await objects.statuses.get(store, "t1") is None


async def test_deleting_a_task_that_changed_since_it_was_read_conflicts(store):
    w = Writer(store)
    rev = await w.apply(objects.tasks.create(task("t1")))
    await w.apply(objects.tasks.update(task("t1", node_id="n1"), rev))
    with pytest.raises(Conflict):
        await w.apply(objects.tasks.delete("t1", rev))
    assert (await objects.tasks.get(store, "t1")).obj.node_id == "n1"


async def test_a_task_update_at_revision_zero_only_creates(store):
    w = Writer(store)
    await w.apply(objects.tasks.update(task("t1"), 0))
    with pytest.raises(Conflict):
        await w.apply(objects.tasks.update(task("t1", node_id="n2"), 0))


async def test_a_status_report_for_a_task_that_is_gone_is_refused(store):
    w = Writer(store)
    with pytest.raises(Conflict):
        await w.apply(objects.report("ghost", pb.TaskStatus(state=pb.RUNNING)))
    assert await objects.statuses.get(store, "ghost") is None


def test_kinds_keyed_by_another_objects_id_need_that_id():
    with pytest.raises(TypeError, match="obj_id"):
        objects.statuses.put(pb.TaskStatus(state=pb.RUNNING))
    with pytest.raises(TypeError, match="obj_id"):
        objects.managers.put(pb.ManagerStatus(addr="a:1"))
    assert objects.managers.put(pb.ManagerStatus(addr="a:1"), "m1").ops[0].key == keys.key("manager", "m1")


async def test_removing_a_node_takes_its_session_with_it(store):
    w = Writer(store)
    node = pb.Node(id="n1")
    rev = await w.apply(objects.nodes.create(node))
    await w.apply(objects.sessions.put(pb.NodeSession(node_id="n1", session_id="a")))
    await w.apply(objects.nodes.delete(node, rev))
    assert await objects.nodes.get(store, "n1") is None
    assert await objects.sessions.get(store, "n1") is None


async def test_a_session_key_rides_on_its_lease(store):
    lease = await store.lease_grant(5)
    await Writer(store).apply(objects.sessions.put(pb.NodeSession(node_id="n1", session_id="a"), lease=lease))
    assert (await store.get(keys.key("session", "n1"))).lease == lease
    store.advance(6)
    assert await objects.sessions.get(store, "n1") is None


async def test_ending_a_session_leaves_a_newer_session_of_the_node_alone(store):
    w = Writer(store)
    old = pb.NodeSession(node_id="n1", session_id="a", manager_id="m1")
    new = pb.NodeSession(node_id="n1", session_id="b", manager_id="m2")
    await w.apply(objects.sessions.put(new))
    with pytest.raises(Conflict):
        await w.apply(objects.end_session(old))
    assert (await objects.sessions.get(store, "n1")).obj.session_id == "b"
    await w.apply(objects.end_session(new))
    assert await objects.sessions.get(store, "n1") is None


# ---- singletons, images and the election key ------------------------------------------------------


async def test_the_cluster_object_lives_at_its_own_key(store):
    await Writer(store).apply(objects.cluster.create(pb.Cluster(id="c1")))
    assert (await store.get(keys.CLUSTER)) is not None
    assert (await objects.cluster.get(store, "")).obj.id == "c1"
    with pytest.raises(Conflict):
        await Writer(store).apply(objects.cluster.create(pb.Cluster(id="c2")))


async def test_image_records_are_keyed_by_the_hex_of_their_id(store):
    rec = ipb.ImageRecord(id="sha256:" + "ab" * 32, repo_tags=["busybox:latest"])
    await Writer(store).apply(objects.images.put(rec))
    assert (await store.get(keys.IMAGES + "ab" * 32)) is not None
    assert [v.obj.repo_tags for v in await objects.images.list(store)] == [["busybox:latest"]]


async def test_only_one_manager_wins_the_election_key(store):
    w = Writer(store)
    lease = await store.lease_grant(3)
    won_at = await w.apply(objects.campaign("m1", lease))
    with pytest.raises(Conflict):
        await w.apply(objects.campaign("m2", await store.lease_grant(3)))
    assert await objects.leader_of(store) == "m1"
    assert (await store.get(keys.LEADER)).create_revision == won_at
    store.advance(4)  # the leader's lease ran out
    assert await objects.leader_of(store) == ""


# ---- the fence ---------------------------------------------------------------------------------------


async def test_a_fenced_writer_writes_while_its_leader_holds_the_key(store):
    lease = await store.lease_grant(3)
    won_at = await Writer(store).apply(objects.campaign("m1", lease))
    leader = Writer(store, objects.fence(won_at))
    await leader.apply(objects.tasks.create(task("t1")))
    assert await objects.tasks.get(store, "t1") is not None


async def test_a_deposed_leaders_writer_cannot_write(store):
    won_at = await Writer(store).apply(objects.campaign("m1", await store.lease_grant(3)))
    deposed = Writer(store, objects.fence(won_at))
    store.advance(4)  # m1's lease expired; m2 won
    await Writer(store).apply(objects.campaign("m2", await store.lease_grant(3)))
    with pytest.raises(Conflict):
        await deposed.apply(objects.tasks.create(task("t1")))
    assert await deposed.apply_batches([objects.tasks.create(task("t2"))]) == (0, 0)
    assert await objects.tasks.list(store) == []


def test_a_fence_takes_one_operation_of_the_budget():
    assert Writer(MemoryStore()).budget == MAX_TXN_OPS
    assert Writer(MemoryStore(), Fence(keys.LEADER, 5)).budget == MAX_TXN_OPS - 1


# ---- batches ---------------------------------------------------------------------------------------


def test_batches_cut_at_the_operation_budget_in_order():
    writes = [objects.tasks.create(task(f"t{i:03}")) for i in range(300)]
    cut = batches(writes, 127)
    assert [len(b) for b in cut] == [127, 127, 46]
    assert [w for b in cut for w in b] == writes


def test_a_write_counts_its_larger_side_against_the_budget():
    delete = objects.tasks.delete("t1", 7)  # one compare, three deletes (the task, its report, its addresses)
    assert delete.size == 3
    assert [len(b) for b in batches([delete] * 100, 128)] == [42, 42, 16]


def test_joined_writes_keep_every_compare_and_op():
    a, b = objects.tasks.create(task("t1")), objects.tasks.delete("t2", 3)
    j = Write.join([a, b])
    assert j.compares == a.compares + b.compares and j.ops == a.ops + b.ops


async def test_apply_batches_skips_only_the_batch_that_lost_a_race(store):
    w = Writer(store)
    await w.apply(objects.tasks.create(task("t000")))  # makes the first batch's create fail
    writes = [objects.tasks.create(task(f"t{i:03}")) for i in range(200)]
    applied, rev = await w.apply_batches(writes)
    assert applied == 72, "the second batch (t128..t199) applied; the first lost"
    assert rev == (await store.range("/")).revision
    ids = {v.obj.id for v in await objects.tasks.list(store)}
    assert ids == {"t000"} | {f"t{i:03}" for i in range(128, 200)}


async def test_apply_each_drops_only_the_writes_that_conflict(store):
    w = Writer(store)
    await w.apply(objects.tasks.create(task("t1")))
    await w.apply(objects.tasks.create(task("t3")))
    reports = [objects.report(tid, pb.TaskStatus(state=pb.RUNNING)) for tid in ("t1", "t2", "t3")]
    rev = await w.apply_each(reports)
    assert rev > 0
    assert {v.obj.state for v in await objects.statuses.list(store)} == {pb.RUNNING}
    assert len(await objects.statuses.list(store)) == 2, "t2 does not exist: its report is dropped, the others land"


async def test_apply_each_of_nothing_writes_nothing(store):
    assert await Writer(store).apply_each([]) == 0
    assert await Writer(store).apply_batches([]) == (0, 0)


# ---- update with conflict retry --------------------------------------------------------------------


class RacingStore(MemoryStore):
    """Before each of the first ``races`` transactions on ``key``, someone else rewrites it."""

    def __init__(self, key: str, races: int) -> None:
        super().__init__()
        self.key, self.races, self.txns = key, races, 0

    async def txn(self, compares, success, failure=()):
        if self.races and any(c.key == self.key for c in compares):
            self.races -= 1
            kv = await super().get(self.key)
            if kv is not None:
                await super().txn([], [type(success[0])(self.key, kv.value)])  # same value, newer revision
        self.txns += 1
        return await super().txn(compares, success, failure)


async def test_update_retrying_creates_when_missing(store):
    made = await objects.nodes.update_retrying(Writer(store), "n1", lambda cur: cur or pb.Node(id="n1"))
    assert made.id == "n1" and (await objects.nodes.get(store, "n1")) is not None


async def test_update_retrying_writes_the_change(store):
    await Writer(store).apply(objects.nodes.create(pb.Node(id="n1")))
    def drain(cur: pb.Node | None) -> pb.Node:
        cur.spec.availability = pb.NodeSpec.DRAIN
        return cur

    out = await objects.nodes.update_retrying(Writer(store), "n1", drain)
    assert out.spec.availability == pb.NodeSpec.DRAIN
    assert (await objects.nodes.get(store, "n1")).obj.spec.availability == pb.NodeSpec.DRAIN


async def test_update_retrying_writes_nothing_when_mutate_says_so(store):
    rev = await Writer(store).apply(objects.nodes.create(pb.Node(id="n1")))
    out = await objects.nodes.update_retrying(Writer(store), "n1", lambda cur: None)
    assert out.id == "n1" and (await objects.nodes.get(store, "n1")).rev == rev
    assert await objects.nodes.update_retrying(Writer(store), "n2", lambda cur: None) is None


async def test_update_retrying_reads_again_after_losing_a_race():
    store = RacingStore(keys.key("node", "n1"), races=2)
    await store.put(keys.key("node", "n1"), keys.encode(pb.Node(id="n1")))
    calls = []

    def label(cur: pb.Node | None) -> pb.Node:
        calls.append(1)
        cur.spec.labels["zone"] = "east"
        return cur

    out = await objects.nodes.update_retrying(Writer(store), "n1", label)
    assert out.spec.labels["zone"] == "east" and len(calls) == 3, "two lost races, then it lands"
    assert (await objects.nodes.get(store, "n1")).obj.spec.labels["zone"] == "east"
    await store.close()


async def test_update_retrying_gives_up_after_its_attempts():
    store = RacingStore(keys.key("node", "n1"), races=100)
    await store.put(keys.key("node", "n1"), keys.encode(pb.Node(id="n1")))
    with pytest.raises(Conflict, match="3 attempts"):
        await objects.nodes.update_retrying(Writer(store), "n1", lambda cur: cur, attempts=3)
    await store.close()


async def test_an_error_raised_by_mutate_propagates_and_writes_nothing(store):
    def refuse(cur: pb.Cluster | None) -> pb.Cluster:
        raise LookupError("not initialised")

    with pytest.raises(LookupError):
        await objects.cluster.update_retrying(Writer(store), "", refuse)
    assert store.snapshot() == {}
