"""``shoal run --network`` at the manager: a node's container attached to an attachable network, over the
in-memory store with the real allocator (addresses given, the node put on the network, both released)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress

import grpc
import pytest

from shoal.manager import networks
from shoal.manager.cache import ClusterCache
from shoal.manager.dispatcher import attach
from shoal.manager.ipam import IpamStore
from shoal.manager.store import objects
from shoal.manager.store.memory import MemoryStore
from shoal.manager.store.writes import Writer
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from tests.fixtures.allocworld import allocator_world, until


@pytest.fixture
async def world():
    async with allocator_world() as (store, cache, _, plan):
        w = Writer(store)
        for nid, addr in (("n1", "192.168.9.1:4000"), ("n2", "192.168.9.2:4000")):
            await w.apply(objects.nodes.create(pb.Node(id=nid, description=pb.NodeDescription(addr=addr))))
        for name, attachable in (("apps", True), ("sealed", False)):
            rev = (await networks.create(store, plan, pb.NetworkSpec(name=name, attachable=attachable)))[1]
            await cache.wait_for(rev, 2)
        yield store, cache, plan


def request(network: str, cid: str = "c" * 64, name: str = "probe") -> dpb.AttachNetworkRequest:
    return dpb.AttachNetworkRequest(network=network, container_id=cid, container_name=name)



async def test_an_attached_container_gets_addresses_and_its_node_joins_the_network(world):
    store, cache, plan = world
    got = await attach.attach(cache, Writer(store), "n1", request("apps"))
    net = got.network
    assert net.spec.name == "apps" and got.attachment.node_id == "n1"
    assert ipaddress.ip_interface(got.attachment.address) in ipaddress.ip_network(net.subnet)
    assert ipaddress.ip_interface(got.attachment.address).ip not in ipaddress.ip_network(net.vip_block)
    node_subnet = ipaddress.ip_network(cache.get("nodenet", "n1").subnet)
    assert ipaddress.ip_interface(got.addresses.bridge_address) in node_subnet
    assert [o.network for o in cache.get("nodenet", "n1").overlays] == ["apps", "ingress"]
    assert [o.network for o in cache.get("nodenet", "n2").overlays] == ["ingress"]  # only where a container is
    (shown,) = networks.containers_on(net, [v.obj for v in cache.objects["attachment"].values()],
                                      lambda aid: cache.get("addresses", aid))
    assert (shown.container_name, shown.address) == ("probe", got.attachment.address)

    await attach.detach(cache, Writer(store), "n1", got.attachment.id)
    await until(lambda: cache.get("addresses", got.attachment.id) is None)
    await until(lambda: [o.network for o in cache.get("nodenet", "n1").overlays] == ["ingress"])
    ipam, _ = await plan.read()
    assert got.attachment.id not in ipam.network("apps").addresses.owners.values()
    await attach.detach(cache, Writer(store), "n1", got.attachment.id)  # twice is fine


@pytest.mark.parametrize(("network", "code", "message"), [
    ("sealed", grpc.StatusCode.PERMISSION_DENIED, "network sealed not manually attachable"),
    ("ingress", grpc.StatusCode.PERMISSION_DENIED, "network ingress not manually attachable"),
    ("nope", grpc.StatusCode.NOT_FOUND, "network nope not found"),
])
async def test_a_network_a_container_may_not_join_is_refused_with_nothing_written(world, network, code, message):
    store, cache, _ = world
    await until(lambda: any(v.obj.spec.ingress for v in cache.objects["network"].values()))
    with pytest.raises(attach.AttachError, match=message) as err:
        await attach.attach(cache, Writer(store), "n1", request(network))
    assert err.value.code == code
    assert not (await store.range(objects.attachments.key(""))).kvs


async def test_a_node_detaches_only_its_own_containers_and_a_network_in_use_stays(world):
    store, cache, plan = world
    got = await attach.attach(cache, Writer(store), "n2", request("apps", name="web-probe"))
    with pytest.raises(attach.AttachError, match="belongs to another node") as err:
        await attach.detach(cache, Writer(store), "n1", got.attachment.id)
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
    net = got.network
    with pytest.raises(networks.NetworkError, match="has active endpoints \\(containers web-probe\\)"):
        await networks.remove(store, plan, net, cache.rev("network", net.id), [],
                              [v.obj for v in cache.objects["attachment"].values()])
    assert cache.get("network", net.id) is not None


async def test_without_a_leader_to_allocate_the_attach_gives_up_and_leaves_nothing():
    store = MemoryStore()  # no allocator runs here: the addresses never come
    cache = ClusterCache(store)
    runner = asyncio.create_task(cache.run())
    try:
        await asyncio.wait_for(cache.ready.wait(), 2)
        rev = (await networks.create(store, IpamStore(store), pb.NetworkSpec(name="apps", attachable=True)))[1]
        await cache.wait_for(rev, 2)
        with pytest.raises(attach.AttachError, match="no address on network apps within 0.3 s") as err:
            await attach.attach(cache, Writer(store), "n1", request("apps"), timeout=0.3)
        assert err.value.code == grpc.StatusCode.UNAVAILABLE
        assert not (await store.range(objects.attachments.key(""))).kvs
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        await store.close()


async def test_a_removed_nodes_attachments_go_and_their_addresses_with_them(world):
    store, cache, plan = world
    got = await attach.attach(cache, Writer(store), "n2", request("apps"))
    node = cache.get("node", "n2")
    await Writer(store).apply(objects.nodes.delete(node, cache.rev("node", "n2")))
    await until(lambda: cache.get("attachment", got.attachment.id) is None)
    await until(lambda: cache.get("addresses", got.attachment.id) is None)
    ipam, _ = await plan.read()
    assert got.attachment.id not in ipam.network("apps").addresses.owners.values()
