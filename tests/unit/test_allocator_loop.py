"""The allocator loop over the in-memory store: ingress made once, records written, and kept in step."""

from __future__ import annotations

import asyncio

import pytest

from shoal.manager.cache import ClusterCache
from shoal.manager.ipam import IpamStore
from shoal.manager.store import objects
from shoal.manager.store.writes import Writer
from shoal.proto import types_pb2 as pb
from tests.fixtures.allocworld import allocator_world, until


@pytest.fixture
async def world():
    async with allocator_world() as (store, cache, alloc, _):
        yield store, cache, alloc



def ingress(cache: ClusterCache) -> list[pb.Network]:
    return [v.obj for v in cache.objects["network"].values() if v.obj.spec.ingress]


async def test_the_first_pass_makes_ingress_once_from_the_clusters_pool(world):
    store, cache, _ = world
    (net,) = await until(lambda: ingress(cache))
    assert net.spec.name == "ingress" and net.subnet.startswith("10.66.")
    await asyncio.sleep(0.1)
    assert len(ingress(cache)) == 1


async def test_nodes_services_and_tasks_get_their_records_and_lose_them_when_gone(world):
    store, cache, _ = world
    w = Writer(store)
    await until(lambda: ingress(cache))
    await w.apply(objects.nodes.create(pb.Node(id="n1", description=pb.NodeDescription(addr="192.168.5.1:4000"))))
    svc = pb.Service(id="s1", spec=pb.ServiceSpec(name="web", ports=[pb.PortConfig(target_port=80)]))
    await w.apply(objects.services.create(svc))
    await w.apply(objects.tasks.create(pb.Task(id="t1", service_id="s1", node_id="n1", spec=svc.spec, desired_state=pb.RUNNING)))
    rec = await until(lambda: cache.get("addresses", "t1"))
    assert rec.bridge_address.startswith("10.66.") and [a.network for a in rec.networks] == ["ingress"]
    info = await until(lambda: cache.get("nodenet", "n1"))
    assert info.underlay == "192.168.5.1"
    ep = await until(lambda: cache.get("endpoint", "s1"))
    assert ep.endpoint.ports[0].published_port == 30000 and ep.endpoint.virtual_ips[0].network == "ingress"
    await w.apply(objects.services.delete(cache.get("service", "s1")))
    await w.apply(objects.tasks.delete("t1"))
    await until(lambda: cache.get("endpoint", "s1") is None and cache.get("addresses", "t1") is None)
    for _ in range(300):  # the task's address is given back by the allocator's next pass
        plan = (await IpamStore(store).read())[0]
        if not plan.nodes["n1"].owners and plan.network("ingress").addresses.lookup("vip:s1") is None:
            break
        await asyncio.sleep(0.01)
    assert plan.nodes["n1"].owners == {} and plan.network("ingress").addresses.lookup("t1") is None
    assert plan.network("ingress").addresses.lookup("vip:s1") is None
