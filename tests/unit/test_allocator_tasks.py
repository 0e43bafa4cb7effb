"""The allocator's pass over a few tasks: the whole pass's answers, at the cost of those tasks alone.

A rolling update creates, places and ends tasks one batch at a time; each of those changes used to run a
pass over the whole cluster (read and decode the address plan, every task, every record). The task pass
must decide exactly what the whole pass would: after it, a whole pass changes nothing."""

from __future__ import annotations

import asyncio
import copy
import random

import pytest

from shoal.manager.allocator.decide import Snapshot, allocate, allocate_tasks
from shoal.manager.ipam import Ipam, IpamStore
from shoal.manager.ipam.stored import documents
from shoal.manager.networks import forget
from shoal.manager.store import objects
from shoal.manager.store.memory import MemoryStore
from shoal.manager.store.writes import Writer
from shoal.proto import types_pb2 as pb
from tests.fixtures.allocworld import allocator_world, until

SPEC = pb.ServiceSpec(name="web", ports=[pb.PortConfig(target_port=80, published_port=8080)])


def cluster(ipam: Ipam, tasks: int) -> Snapshot:
    net = ipam.create_network("ingress")
    ingress = pb.Network(id="ing", spec=pb.NetworkSpec(name="ingress", ingress=True), subnet=str(net.subnet))
    nodes = {n: pb.Node(id=n, description=pb.NodeDescription(addr=f"10.0.0.{i}:4242")) for i, n in enumerate(("n1", "n2", "n3"))}
    svc = pb.Service(id="s1", spec=SPEC)
    snap = Snapshot(networks={"ing": ingress}, services={"s1": svc}, nodes=nodes)
    for i in range(tasks):
        snap.tasks[f"t{i}"] = (pb.Task(id=f"t{i}", service_id="s1", node_id=f"n{1 + i % 3}", spec=SPEC, desired_state=pb.RUNNING), pb.RUNNING)
    return snap


def test_after_task_passes_over_a_rolling_update_the_whole_pass_changes_nothing():
    rng = random.Random(7)
    ipam = Ipam.create("10.66.0.0/16")
    snap = cluster(ipam, 30)
    allocate(ipam, snap)
    records = {}
    for step in range(20):  # a batch of replacements: new ones appear, get placed; old ones end or go
        changed = set()
        for j in range(3):
            tid = f"new{step}-{j}"
            node = rng.choice(["", "n1", "n2", "n3"])  # "": not placed yet
            snap.tasks[tid] = (pb.Task(id=tid, service_id="s1", node_id=node, spec=SPEC, desired_state=pb.RUNNING), pb.PENDING)
            changed.add(tid)
        for tid in rng.sample(sorted(t for t in snap.tasks if not t.startswith(f"new{step}-")), 3):
            if rng.random() < 0.5:
                del snap.tasks[tid]
            else:
                snap.tasks[tid] = (snap.tasks[tid][0], pb.SHUTDOWN)
            changed.add(tid)
        only = Snapshot(networks=snap.networks, tasks={t: snap.tasks[t] for t in changed if t in snap.tasks}, nodes=snap.nodes)
        plan = allocate_tasks(ipam, only, changed)
        assert plan is not None
        records.update(plan.addresses)
        for tid in plan.gone:
            records.pop(tid, None)
    before = documents(ipam)
    whole = allocate(ipam, snap)
    assert documents(ipam) == before, "the whole pass had something left to allocate or give back"
    for tid, rec in whole.addresses.items():
        if tid.startswith("new"):
            assert records.get(tid) == rec


def test_a_task_on_another_network_than_ingress_is_left_to_the_whole_pass():
    ipam = Ipam.create("10.66.0.0/16")
    snap = cluster(ipam, 3)
    allocate(ipam, snap)
    net = ipam.create_network("backend")
    snap.networks["be"] = pb.Network(id="be", spec=pb.NetworkSpec(name="backend"), subnet=str(net.subnet))
    spec = pb.ServiceSpec(name="db", networks=[pb.NetworkAttachmentConfig(target="be")])
    snap.tasks["db1"] = (pb.Task(id="db1", service_id="s2", node_id="n1", spec=spec, desired_state=pb.RUNNING), pb.ASSIGNED)
    before = copy.deepcopy(documents(ipam))
    assert allocate_tasks(ipam, snap, {"db1", "t0"}) is None  # its node may join the backend network
    assert documents(ipam) == before


def count_reads(store: MemoryStore) -> list[str]:
    """The prefixes ``store`` is read (ranged) at from now on, in order."""
    reads: list[str] = []
    real = store.range

    async def counting(prefix: str, *a, **kw):  # type: ignore[no-untyped-def]
        reads.append(prefix)
        return await real(prefix, *a, **kw)

    store.range = counting  # type: ignore[method-assign]
    return reads


async def test_a_reused_plan_is_not_read_again_and_a_plan_changed_behind_it_is():
    store = MemoryStore()
    plans, other = IpamStore(store, "10.66.0.0/16"), IpamStore(store, "10.66.0.0/16")
    await plans.update(lambda ipam: ipam.create_network("ingress"))
    reads = count_reads(store)
    first = await plans.update(lambda ipam: ipam.network_address_text("ingress", "t1"), reuse=True)
    assert reads == [], "the plan as last written was used"
    await other.update(lambda ipam: ipam.network_address_text("ingress", "t2"))  # another writer (a network op)
    reads.clear()
    third = await plans.update(lambda ipam: ipam.network_address_text("ingress", "t3"), reuse=True)
    assert reads, "the stale plan's write failed: it was read again"
    stored = (await plans.read())[0].network("ingress").addresses
    assert str(stored.lookup("t1")) == first.split("/")[0] and str(stored.lookup("t3")) == third.split("/")[0]
    assert len({stored.lookup(o) for o in ("t1", "t2", "t3")}) == 3, "no address handed out twice"


@pytest.fixture
async def world():
    async with allocator_world() as (store, cache, alloc, _):
        yield store, cache, alloc



async def test_a_placed_task_gets_its_addresses_without_the_plan_being_read_and_an_ended_one_gives_them_back(world):
    store, cache, alloc = world
    w = Writer(store)
    await w.apply(objects.nodes.create(pb.Node(id="n1", description=pb.NodeDescription(addr="192.168.5.1:4000"))))
    await w.apply(objects.services.create(pb.Service(id="s1", spec=SPEC)))
    await until(lambda: cache.get("nodenet", "n1") and cache.get("endpoint", "s1"))
    await asyncio.sleep(0.1)  # the whole passes those changes asked for are over
    reads = count_reads(store)
    task = pb.Task(id="t1", service_id="s1", spec=SPEC, desired_state=pb.RUNNING)
    await w.apply(objects.tasks.create(task))
    task.node_id = "n1"  # the scheduler places it
    await w.apply(objects.tasks.update(task, await until(lambda: cache.rev("task", "t1"))))
    rec = await until(lambda: cache.get("addresses", "t1"))
    assert rec.node_id == "n1" and rec.bridge_address.startswith("10.66.") and [a.network for a in rec.networks] == ["ingress"]
    assert not [r for r in reads if "ipam" in r], "a task's change did not read the address plan"
    await w.apply(objects.report("t1", pb.TaskStatus(state=pb.SHUTDOWN)))
    await until(lambda: cache.get("addresses", "t1") is None)
    plan = (await IpamStore(store).read())[0]
    assert plan.nodes["n1"].lookup("t1") is None and plan.network("ingress").addresses.lookup("t1") is None


def test_the_end_of_the_last_task_of_a_removed_network_is_left_to_the_whole_pass_which_frees_it():
    ipam = Ipam.create("10.66.0.0/16")
    snap = cluster(ipam, 2)
    net = ipam.create_network("backend")
    snap.networks["be"] = pb.Network(id="be", spec=pb.NetworkSpec(name="backend"), subnet=str(net.subnet))
    spec = pb.ServiceSpec(name="db", networks=[pb.NetworkAttachmentConfig(target="be")])
    db = pb.Task(id="db1", service_id="s2", node_id="n1", spec=spec, desired_state=pb.SHUTDOWN)
    snap.tasks["db1"] = (db, pb.RUNNING)
    allocate(ipam, snap)
    del snap.networks["be"]  # `network rm` (as `stack rm` does) while db1 is still stopping
    assert not forget(ipam, "backend"), "held until its task ends"
    snap.tasks["db1"] = (db, pb.SHUTDOWN)  # db1 ended: a task change alone
    only = Snapshot(networks=snap.networks, tasks={"db1": snap.tasks["db1"]}, nodes=snap.nodes)
    assert allocate_tasks(ipam, only, {"db1"}) is None, "a task pass cannot see that no task holds it any more"
    allocate(ipam, snap)
    assert "backend" not in ipam.networks, "the whole pass gave the subnet and VXLAN id back"
