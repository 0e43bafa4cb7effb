"""The address plan at cluster scale: 1,000 nodes and 10,000 tasks fit, in one pass and through the store.

The ingress network holds an address for every node and for every task that publishes a port; sized
like a user network (/24) it stopped a cluster at ~190 nodes (bench/scale_1000.py placed 20 tasks of
10,000). These tests drive the allocator's pure pass and the stored plan (the in-memory store, with
etcd's limit of 128 operations per transaction) at the scale the bench runs.
"""

from __future__ import annotations

import ipaddress
import json

import pytest

from shoal.manager.allocator.decide import Snapshot, allocate
from shoal.manager.ipam import Ipam, IpamStore
from shoal.manager.ipam.addresses import AddressSpace
from shoal.manager.ipam.stored import NODES, POOL, documents, from_documents
from shoal.manager.ipam.subnets import ingress_prefix_for
from shoal.manager.reactor import ALL
from shoal.manager.store.base import MAX_TXN_OPS
from shoal.manager.store.memory import MemoryStore
from shoal.proto import types_pb2 as pb

BENCH_POOL = "10.128.0.0/9"  # what bench/scale_1000.py passes: 1,000 node /24s need more than a /16


def _cluster(nodes: int, tasks: int, publish: bool = True) -> Snapshot:
    svc = pb.Service(id="s", spec=pb.ServiceSpec(name="web"), spec_version=1)
    if publish:
        svc.spec.ports.add(target_port=80, published_port=8080)
    return Snapshot(
        networks={"ni": pb.Network(id="ni", spec=pb.NetworkSpec(name="ingress", ingress=True))},
        services={"s": svc},
        nodes={f"n{i}": pb.Node(id=f"n{i}", description=pb.NodeDescription(addr=f"192.168.{i // 250}.{i % 250 + 1}"))
               for i in range(nodes)},
        tasks={f"t{i}": (pb.Task(id=f"t{i}", service_id="s", node_id=f"n{i % nodes}", spec=svc.spec), pb.RUNNING)
               for i in range(tasks)},
    )


@pytest.mark.parametrize(("pool", "prefix"), [
    ("10.210.0.0/16", 18), (BENCH_POOL, 18), ("10.0.0.0/8", 18), ("10.9.0.0/20", 22), ("10.9.0.0/24", 26),
])
def test_the_ingress_network_is_a_18_or_a_quarter_of_a_smaller_pool(pool, prefix):
    ipam = Ipam.create(pool)
    ingress = ipam.create_network("ingress")
    assert ingress.subnet.prefixlen == prefix == ingress_prefix_for(ipaddress.ip_network(pool))
    if prefix < 24:
        assert ipam.create_network("web").subnet.prefixlen == 24  # user networks stay /24, as in Swarm


def test_1000_nodes_and_10000_publishing_tasks_get_every_address_in_one_pass():
    ipam = Ipam.create(BENCH_POOL)
    ipam.create_network("ingress")
    snap = _cluster(1000, 10_000)
    plan = allocate(ipam, snap)
    assert plan.problems == {}
    assert len(plan.nodenets) == 1000 and len(plan.addresses) == 10_000
    ingress = [o.address for n in plan.nodenets.values() for o in n.overlays if o.network == "ingress"]
    ingress += [a.address for rec in plan.addresses.values() for a in rec.networks if a.network == "ingress"]
    assert len(ingress) == len(set(ingress)) == 11_000  # every node and task, no address twice
    vips = ipam.network("ingress").vip_block
    assert not any(ipaddress.ip_interface(a).ip in vips for a in ingress)
    bridge = {rec.bridge_address for rec in plan.addresses.values()}
    assert len(bridge) == 10_000
    assert allocate(ipam, snap).addresses == plan.addresses  # a second pass hands out the same answers


def test_the_default_pool_gives_ingress_addresses_past_the_old_190_node_cap():
    ipam = Ipam.create()  # 10.210.0.0/16: ingress /18, then 192 node /24s
    ipam.create_network("ingress")
    plan = allocate(ipam, _cluster(190, 5_000))
    assert plan.problems == {} and len(plan.addresses) == 5_000
    more = allocate(ipam, _cluster(193, 5_000))  # the pool itself, not ingress, is what ends it
    assert {k for k in more.problems if k.startswith("n")} == {"n192"}
    assert "has no free /24" in more.problems["n192"] and len(more.addresses) == 5_000 - len(more.problems) + 1


async def test_a_pass_over_1000_nodes_is_stored_in_transactions_etcd_accepts():
    store = MemoryStore()  # refuses a transaction of more than MAX_TXN_OPS operations, as etcd does
    plans = IpamStore(store, BENCH_POOL)
    await plans.update(lambda ipam: ipam.create_network("ingress"))
    snap = _cluster(1000, 3_000, publish=False)
    plan = await plans.update(lambda ipam: allocate(ipam, snap))
    assert plan.problems == {} and len(plan.addresses) == 3_000
    stored, _ = await plans.read()
    assert len(stored.nodes) == 1000 > MAX_TXN_OPS
    for rec in plan.addresses.values():  # what the records say is what the store keeps
        assert stored.nodes[rec.node_id].lookup(rec.task_id) == ipaddress.ip_interface(rec.bridge_address).ip
    assert await plans.update(lambda ipam: allocate(ipam, snap)) == plan  # nothing new to write


async def test_a_write_split_over_transactions_that_loses_a_race_is_run_again():
    store = MemoryStore()
    plans = IpamStore(store, BENCH_POOL)
    snap = _cluster(300, 600, publish=False)
    real_txn, calls = store.txn, []

    async def racing(compares, success, failure=()):
        calls.append(len(success))
        if len(calls) == 2:  # between two transactions of one change, another manager takes a subnet
            await real_txn([], [])
            await IpamStore(store).update(lambda ipam: ipam.create_network("raced"))
        return await real_txn(compares, success, failure)

    store.txn = racing  # type: ignore[method-assign]
    await plans.update(lambda ipam: allocate(ipam, snap))
    stored, _ = await plans.read()
    assert max(calls) <= MAX_TXN_OPS and len(calls) > 3
    raced = stored.network("raced").subnet
    assert len(stored.nodes) == 300 and not any(s.subnet.overlaps(raced) for s in stored.nodes.values())
    assert sum(len(s.owners) for s in stored.nodes.values()) == 600


def test_a_plan_stored_before_ingress_had_its_own_size_loads_with_the_default():
    docs = documents(Ipam.create())
    head = json.loads(docs[POOL])
    del head["ingress_prefix"]
    docs[POOL] = json.dumps(head).encode()
    assert from_documents(docs).ingress_prefix == 18
    docs[NODES + "n1"] = json.dumps(AddressSpace.of("10.210.99.0/24").to_dict()).encode()
    with pytest.raises(ValueError, match="inconsistent"):
        from_documents(docs)  # a node key the pool does not record is refused, not guessed at


def test_the_owner_index_follows_allocate_release_claim_and_clear():
    space = AddressSpace.of("10.1.0.0/22")
    addrs = {f"t{i}": space.allocate(f"t{i}") for i in range(500)}
    for i in range(0, 500, 2):
        assert space.release(f"t{i}") == addrs[f"t{i}"]
    assert space.lookup("t0") is None and space.lookup("t1") == addrs["t1"]
    assert space.claim("t0", addrs["t0"]) == addrs["t0"] and space.lookup("t0") == addrs["t0"]
    space.clear()
    assert space.owners == {} and space.lookup("t1") is None
    assert space.allocate("t1") != addrs["t1"]  # next-fit: not the address it just gave back
    assert AddressSpace.from_dict(space.to_dict()).lookup("t1") == space.lookup("t1")


def test_the_allocator_passes_on_an_ended_task_not_on_every_status_report():
    from shoal.manager.allocator.loop import Allocator
    from shoal.manager.cache import ClusterCache
    from shoal.manager.store.writes import Writer

    store = MemoryStore()
    alloc = Allocator(ClusterCache(store), Writer(store), IpamStore(store))
    for state in (pb.PREPARING, pb.STARTING, pb.RUNNING):  # 10,000 starting tasks send 30,000 of these
        alloc.on_change("status", "t1", pb.TaskStatus(state=state))
    assert alloc.reactor.dirty == set()
    alloc.on_change("status", "t1", pb.TaskStatus(state=pb.COMPLETE))  # its addresses are to be released
    alloc.on_change("status", "t2", None)
    alloc.on_change("attachment", "a1", pb.ContainerAttachment(id="a1"))
    assert alloc.reactor.dirty == {"t1", "t2", ALL}  # a task alone, or the whole pass (an attachment)


async def test_a_mask_length_chosen_at_init_sizes_node_and_network_subnets_so_1000_nodes_fit_a_16():
    plans = IpamStore(MemoryStore(), "10.210.0.0/16", 27)  # --default-addr-pool-mask-length 27
    await plans.update(lambda ipam: ipam.create_network("ingress"))
    snap = _cluster(1000, 10_000)
    plan = await plans.update(lambda ipam: allocate(ipam, snap))
    assert plan.problems == {} and len(plan.addresses) == 10_000
    stored, _ = await plans.read()
    assert {s.subnet.prefixlen for s in stored.nodes.values()} == {27} and stored.network("ingress").subnet.prefixlen == 18
    assert stored.create_network("web").subnet.prefixlen == 27
