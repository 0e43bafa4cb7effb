"""Networks through the control API on real etcd and gRPC: objects, allocation, refusals, network maps.

A manager with fake-executor agents (tasks reach RUNNING without containers): what the user sees
(network ls/inspect/rm, service VIPs and ports, task addresses) and what a node is sent (its map).
"""

from __future__ import annotations

import ipaddress

import grpc
import pytest

from shoal.manager.ipam import IpamStore
from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb
from tests.fixtures.cluster import Cluster, spec


async def create_net(cluster: Cluster, name: str, subnet: str = "") -> pb.Network:
    return (
        await cluster.control.CreateNetwork(
            cpb.CreateNetworkRequest(spec=pb.NetworkSpec(name=name, subnet=subnet))
        )
    ).network


async def refused(call, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await call
    assert exc.value.code() == code, exc.value.details()
    return exc.value.details()


async def networks(cluster: Cluster) -> dict[str, pb.Network]:
    return {n.spec.name: n for n in (await cluster.control.ListNetworks(cpb.ListNetworksRequest())).networks}


async def test_ingress_is_built_in_and_networks_get_their_own_subnet_and_vxlan_id(cluster):
    await cluster.until(lambda: _has(cluster, "ingress"))
    web = await create_net(cluster, "web")
    back = await create_net(cluster, "back", "10.99.0.0/24")
    nets = await networks(cluster)
    assert set(nets) == {"ingress", "web", "back"}
    assert nets["ingress"].spec.ingress and not web.spec.ingress
    assert ipaddress.ip_network(web.subnet).subnet_of(ipaddress.ip_network("10.210.0.0/16"))
    assert back.subnet == "10.99.0.0/24" and back.vip_block == "10.99.0.192/26"
    assert len({n.vxlan_id for n in nets.values()}) == 3 and min(n.vxlan_id for n in nets.values()) >= 4096
    assert web.spec.driver == "overlay" and web.meta.created_at_ns > 0
    got = (await cluster.control.GetNetwork(cpb.GetNetworkRequest(network_id=web.id[:6]))).network
    assert got.spec.name == "web"


async def _has(cluster, name):
    return name in await networks(cluster)


async def test_bad_network_requests_are_refused_and_write_nothing(cluster):
    await cluster.until(lambda: _has(cluster, "ingress"))
    await create_net(cluster, "back", "10.99.0.0/24")
    plan = IpamStore(cluster.manager.store)
    before = (await plan.read())[0].to_dict()
    msg = await refused(create_net(cluster, "other", "10.99.0.128/25"), grpc.StatusCode.INVALID_ARGUMENT)
    assert msg == "subnet 10.99.0.128/25 overlaps 10.99.0.0/24 of network 'back'"
    msg = await refused(create_net(cluster, "back"), grpc.StatusCode.ALREADY_EXISTS)
    assert msg == "network with name back already exists"
    msg = await refused(create_net(cluster, "bad", "10.1.2.3/24"), grpc.StatusCode.INVALID_ARGUMENT)
    assert msg.startswith("invalid subnet '10.1.2.3/24'")
    msg = await refused(
        cluster.control.GetNetwork(cpb.GetNetworkRequest(network_id="nope")), grpc.StatusCode.NOT_FOUND
    )
    assert msg == "network nope not found"
    msg = await refused(
        cluster.control.RemoveNetwork(cpb.RemoveNetworkRequest(network_id="ingress")),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert msg == "the ingress network is built in: it cannot be removed"
    assert (await plan.read())[0].to_dict() == before
    assert set(await networks(cluster)) == {"ingress", "back"}


def net_spec(name: str, nets: list[str], published: int = 0, **kw) -> pb.ServiceSpec:
    s = spec(name=name, replicas=2, **kw)
    s.networks.extend(pb.NetworkAttachmentConfig(target=n) for n in nets)
    if published:
        s.ports.add(target_port=80, published_port=published)
    return s


async def test_services_get_vips_ports_and_tasks_get_addresses(cluster):
    await cluster.add_agent("w1")
    await cluster.add_agent("w2")
    await cluster.until(lambda: _has(cluster, "ingress"))
    web = await create_net(cluster, "web")
    await cluster.control.CreateService(
        cpb.CreateServiceRequest(spec=net_spec("app", ["web"], published=8080))
    )
    auto = net_spec("auto", ["web"])
    auto.ports.add(target_port=81)  # published 0: picked from 30000-32767
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=auto))
    svc = await cluster.until(lambda: _endpoint(cluster, "app", 2))
    assert svc.spec.networks[0].target == web.id  # stored by id
    vips = {v.network: v.addr for v in svc.endpoint.virtual_ips}
    assert set(vips) == {"web", "ingress"}
    assert ipaddress.ip_interface(vips["web"]).ip in ipaddress.ip_network(web.vip_block)
    assert [(p.target_port, p.published_port) for p in svc.endpoint.ports] == [(80, 8080)]
    picked = (await cluster.until(lambda: _endpoint(cluster, "auto", 2))).endpoint.ports[0].published_port
    assert 30000 <= picked <= 32767
    running = await cluster.until(lambda: _n_running(cluster, "app", 2))
    for t in running:
        assert {a.network for a in t.networks} == {"web", "ingress"}
        assert t.bridge_address
    nodes = (await cluster.control.ListNodes(cpb.ListNodesRequest())).nodes
    subnets = [n.network.subnet for n in nodes]
    assert all(subnets) and len(set(subnets)) == len(nodes)
    for t in running:
        node = next(n for n in nodes if n.id == t.node_id)
        assert ipaddress.ip_interface(t.bridge_address).ip in ipaddress.ip_network(node.network.subnet)


async def _endpoint(cluster, name, n_vips):
    svc = (await cluster.control.GetService(cpb.GetServiceRequest(service_id=name))).service
    return svc if len(svc.endpoint.virtual_ips) == n_vips else None


async def _n_running(cluster, name, n):
    r = [t for t in await cluster.running(name) if t.networks]
    return r if len(r) == n else None


async def test_bad_service_network_requests_name_the_problem(cluster):
    await cluster.until(lambda: _has(cluster, "ingress"))
    await create_net(cluster, "web")
    await cluster.control.CreateService(
        cpb.CreateServiceRequest(spec=net_spec("app", ["web"], published=8080))
    )
    msg = await refused(
        cluster.control.CreateService(cpb.CreateServiceRequest(spec=net_spec("other", ["nope"]))),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert msg == "network nope not found"
    msg = await refused(
        cluster.control.CreateService(
            cpb.CreateServiceRequest(spec=net_spec("other", ["web"], published=8080))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert msg == "port 8080/tcp is already published by service app"
    msg = await refused(
        cluster.control.RemoveNetwork(cpb.RemoveNetworkRequest(network_id="web")),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert msg == "network web is in use by service app"
    out_of_range = net_spec("other", ["web"], published=70000)
    msg = await refused(cluster.control.CreateService(cpb.CreateServiceRequest(spec=out_of_range)), grpc.StatusCode.INVALID_ARGUMENT)
    assert msg == "invalid service spec: ports.published: 70000 is not a port number (1-65535)"
    dnsrr = net_spec("other", ["web"], published=9090, endpoint_mode=pb.DNSRR)
    msg = await refused(cluster.control.CreateService(cpb.CreateServiceRequest(spec=dnsrr)), grpc.StatusCode.INVALID_ARGUMENT)
    assert msg == "invalid service spec: endpoint_mode: ports published in ingress mode cannot be used with dnsrr mode (publish with mode=host)"
    on_ingress = net_spec("other", ["ingress"])
    msg = await refused(cluster.control.CreateService(cpb.CreateServiceRequest(spec=on_ingress)), grpc.StatusCode.INVALID_ARGUMENT)
    assert msg == "network ingress is the routing mesh: services join it by publishing ports (-p)"
    names = [s.spec.name for s in (await cluster.control.ListServices(cpb.ListServicesRequest())).services]
    assert names == ["app"]


async def _node_map_tasks(cluster, node_id, service, n):
    m = cluster.manager.dispatcher.net.cluster_net().node_map(node_id)
    svc = next((s for s in m.services if s.name == service), None)
    return svc if svc is not None and len(svc.tasks) == n else None


async def test_every_node_is_sent_the_running_tasks_and_a_stopped_one_leaves_within_a_second(cluster):
    import time

    await cluster.add_agent("w1")
    await cluster.add_agent("w2")
    await cluster.until(lambda: _has(cluster, "ingress"))
    await create_net(cluster, "web")
    await cluster.control.CreateService(
        cpb.CreateServiceRequest(spec=net_spec("app", ["web"], published=8080))
    )
    running = await cluster.until(lambda: _n_running(cluster, "app", 2))
    nodes = {t.node_id for t in running}
    for node_id in nodes:
        svc = await cluster.until(lambda node_id=node_id: _node_map_tasks(cluster, node_id, "app", 2))
        assert {v.network for v in svc.virtual_ips} == {"web", "ingress"}
        assert [p.published_port for p in svc.ports] == [8080]
        # a publishing service's tasks come with their bridge address to every node: the mesh reaches
        # them there when their node's subnet is routed (worker/network/routes.py)
        assert all(t.bridge_address for t in svc.tasks)
        web = next(
            n
            for n in cluster.manager.dispatcher.net.cluster_net().node_map(node_id).networks
            if n.name == "web"
        )
        assert len(web.peers) == len(nodes) - 1
    got = (await cluster.control.GetService(cpb.GetServiceRequest(service_id="app"))).service
    new = pb.ServiceSpec()
    new.CopyFrom(got.spec)
    new.replicas = 1
    started = time.monotonic()
    await cluster.control.UpdateService(
        cpb.UpdateServiceRequest(service_id=got.id, version=got.meta.version, spec=new)
    )
    await cluster.until(lambda: _node_map_tasks(cluster, next(iter(nodes)), "app", 1), timeout=5)
    assert time.monotonic() - started < 1.0


async def test_removing_a_service_releases_its_addresses_and_frees_the_network(cluster):
    await cluster.add_agent("w1")
    await cluster.until(lambda: _has(cluster, "ingress"))
    await create_net(cluster, "web")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=net_spec("app", ["web"])))
    await cluster.until(lambda: _n_running(cluster, "app", 2))
    await cluster.control.RemoveService(cpb.RemoveServiceRequest(service_id="app"))
    await cluster.control.RemoveNetwork(cpb.RemoveNetworkRequest(network_id="web"))  # at once, as `stack rm` does
    assert "web" not in await networks(cluster)
    plan = IpamStore(cluster.manager.store)

    async def web_gone():  # its subnet and VXLAN id come back once the stopping tasks have ended
        return "web" not in (await plan.read())[0].networks

    await cluster.until(web_gone)
    again = await create_net(cluster, "web")
    assert again.subnet


@pytest.fixture
async def pooled(tmp_path, etcd_store, etcd_server):
    c = Cluster(tmp_path, etcd_server.endpoint, etcd_server.tls)
    c.manager.cfg.default_addr_pool = "10.77.0.0/16"
    c.manager.cfg.default_addr_pool_mask_length = 26  # 1,000 nodes in a /16: /26 node subnets, 61 tasks each
    await c.start()
    try:
        yield c
    finally:
        await c.stop()


async def test_the_default_address_pool_is_stored_with_the_cluster_and_used(pooled):
    cluster = (await pooled.control.GetCluster(cpb.GetClusterRequest())).cluster
    assert cluster.default_addr_pool == "10.77.0.0/16" and cluster.default_addr_pool_mask_length == 26
    await pooled.add_agent("w1")
    await pooled.until(lambda: _has(pooled, "ingress"))
    nets = await networks(pooled)
    assert ipaddress.ip_network(nets["ingress"].subnet).subnet_of(ipaddress.ip_network("10.77.0.0/16"))

    async def node_subnet():
        nodes = (await pooled.control.ListNodes(cpb.ListNodesRequest())).nodes
        return [n.network.subnet for n in nodes if n.network.subnet]

    for subnet in await pooled.until(node_subnet):
        assert ipaddress.ip_network(subnet).subnet_of(ipaddress.ip_network("10.77.0.0/16"))
        assert ipaddress.ip_network(subnet).prefixlen == 26
    web = await create_net(pooled, "web")
    assert ipaddress.ip_network(web.subnet).prefixlen == 26 and ipaddress.ip_network(nets["ingress"].subnet).prefixlen == 18
