"""The network allocator's pure pass: node subnets, VIPs, published ports, task addresses and their release."""

from __future__ import annotations

import ipaddress

import pytest

from shoal.manager.allocator.decide import Snapshot, allocate, underlay_of
from shoal.manager.ipam import Ipam
from shoal.manager.ipam import ports as portrules
from shoal.manager.networks import forget
from shoal.proto import types_pb2 as pb

P = pb.PortConfig


def network(nid: str, name: str, ingress: bool = False) -> pb.Network:
    return pb.Network(id=nid, spec=pb.NetworkSpec(name=name, ingress=ingress))


def service(sid: str, name: str, nets=(), ports=(), mode=pb.VIP) -> pb.Service:
    s = pb.Service(id=sid, spec=pb.ServiceSpec(name=name, endpoint_mode=mode), spec_version=1)
    s.spec.networks.extend(pb.NetworkAttachmentConfig(target=n) for n in nets)
    s.spec.ports.extend(ports)
    return s


def task(tid: str, svc: pb.Service, node: str = "", state: int = pb.PENDING) -> tuple[pb.Task, int]:
    return pb.Task(id=tid, service_id=svc.id, node_id=node, spec=svc.spec), state


def node(nid: str, addr: str = "") -> pb.Node:
    return pb.Node(id=nid, description=pb.NodeDescription(addr=addr))


@pytest.fixture
def world() -> tuple[Ipam, Snapshot]:
    ipam = Ipam.create()
    ipam.create_network("ingress")
    ipam.create_network("web")
    ipam.create_network("back")
    app = service("s-app", "app", nets=["n-web"], ports=[P(target_port=80, published_port=8080)])
    snap = Snapshot(
        networks={
            "n-ing": network("n-ing", "ingress", True),
            "n-web": network("n-web", "web"),
            "n-back": network("n-back", "back"),
        },
        services={"s-app": app},
        tasks={"t1": task("t1", app, "node1", pb.RUNNING), "t2": task("t2", app)},
        nodes={"node1": node("node1", "192.168.1.5:40000"), "node2": node("node2", "192.168.1.6")},
    )
    return ipam, snap


def test_a_service_gets_a_vip_per_network_from_the_vip_block_and_ingress_for_its_ports(world):
    ipam, snap = world
    plan = allocate(ipam, snap)
    ep = plan.endpoints["s-app"].endpoint
    vips = {v.network: v.addr for v in ep.virtual_ips}
    assert set(vips) == {"web", "ingress"}
    for name, addr in vips.items():
        assert ipaddress.ip_interface(addr).ip in ipam.network(name).vip_block
    assert [(p.target_port, p.published_port) for p in ep.ports] == [(80, 8080)]


def test_a_placed_task_gets_a_bridge_address_on_its_nodes_subnet_and_one_per_network(world):
    ipam, snap = world
    plan = allocate(ipam, snap)
    rec = plan.addresses["t1"]
    assert rec.node_id == "node1"
    assert ipaddress.ip_interface(rec.bridge_address).ip in ipaddress.ip_network(
        plan.nodenets["node1"].subnet
    )
    assert [a.network for a in rec.networks] == ["ingress", "web"]
    assert "t2" not in plan.addresses  # not placed yet: nothing half-done is recorded
    assert (
        ipam.network("web").addresses.lookup("t2") is not None
    )  # but its network addresses are held already


def test_nodes_get_distinct_subnets_their_underlay_and_an_address_on_the_networks_they_are_on(world):
    ipam, snap = world
    plan = allocate(ipam, snap)
    n1, n2 = plan.nodenets["node1"], plan.nodenets["node2"]
    assert n1.subnet != n2.subnet
    assert n1.gateway == str(ipaddress.ip_network(n1.subnet).network_address + 1) + "/24"
    assert (n1.underlay, n2.underlay) == ("192.168.1.5", "192.168.1.6")
    assert [o.network for o in n1.overlays] == ["ingress", "web"]
    assert [o.network for o in n2.overlays] == ["ingress"]  # no task of node2 is on web


def test_the_same_snapshot_gives_the_same_answers(world):
    ipam, snap = world
    first = allocate(ipam, snap)
    again = allocate(Ipam.from_dict(ipam.to_dict()), snap)
    assert (
        first.addresses == again.addresses
        and first.endpoints == again.endpoints
        and first.nodenets == again.nodenets
    )


def test_an_ended_task_releases_its_addresses_and_they_are_reused_last(world):
    ipam, snap = world
    before = allocate(ipam, snap).addresses["t1"]
    app = snap.services["s-app"]
    snap.tasks["t1"] = (snap.tasks["t1"][0], pb.FAILED)
    snap.tasks["t3"] = task("t3", app, "node1", pb.ASSIGNED)
    plan = allocate(ipam, snap)
    assert "t1" not in plan.addresses
    assert all(
        space.lookup("t1") is None
        for space in [*ipam.nodes.values(), *(n.addresses for n in ipam.networks.values())]
    )
    assert plan.addresses["t3"].bridge_address != before.bridge_address  # next-fit: the freed one comes last


def test_a_removed_service_and_a_dropped_network_give_their_vips_back(world):
    ipam, snap = world
    allocate(ipam, snap)
    snap.services["s-app"].spec.ClearField("networks")
    allocate(ipam, snap)
    assert ipam.network("web").addresses.lookup("vip:s-app") is None
    assert ipam.network("ingress").addresses.lookup("vip:s-app") is not None
    del snap.services["s-app"]
    snap.tasks.clear()
    allocate(ipam, snap)
    assert ipam.network("ingress").addresses.owners == {
        a: o for a, o in ipam.network("ingress").addresses.owners.items() if o.startswith("node:")
    }


def test_a_node_that_left_gives_its_subnet_back(world):
    ipam, snap = world
    allocate(ipam, snap)
    subnet = ipam.nodes["node2"].subnet
    del snap.nodes["node2"]
    plan = allocate(ipam, snap)
    assert "node2" not in ipam.nodes and "node2" not in plan.nodenets
    assert ipam.pool.lookup("node/node2") is None and subnet not in ipam.pool.taken


def test_dnsrr_has_no_vip_on_its_networks(world):
    ipam, snap = world
    snap.services["s-db"] = service("s-db", "db", nets=["n-back"], mode=pb.DNSRR)
    plan = allocate(ipam, snap)
    assert list(plan.endpoints["s-db"].endpoint.virtual_ips) == []
    assert plan.endpoints["s-db"].endpoint.mode == pb.DNSRR


def test_a_full_subnet_is_a_problem_for_that_task_only():
    ipam = Ipam.create(network_prefix=29)
    ipam.create_network(
        "tiny"
    )  # /29: hosts .2-.6 (.1 is the gateway); .6 is in the VIP block (the last quarter)
    svc = service("s", "s", nets=["n"])
    snap = Snapshot(
        networks={"n": network("n", "tiny")},
        services={"s": svc},
        nodes={"a": node("a")},
        tasks={f"t{i}": task(f"t{i}", svc, "a", pb.RUNNING) for i in range(5)},
    )
    plan = allocate(ipam, snap)
    assert sorted(plan.addresses) == ["t0", "t1", "t2", "t3"]
    assert sorted(plan.problems) == ["a", "t4"]  # the node's own address on it did not fit either
    assert all("10.210.0.0/29 has no free address left" in why for why in plan.problems.values())
    assert plan.endpoints["s"].endpoint.virtual_ips[0].addr == "10.210.0.6/29"


def test_underlay_is_the_host_part_of_the_nodes_address():
    assert underlay_of("10.0.0.5:41234") == "10.0.0.5"
    assert underlay_of("ipv4:10.0.0.5:1") == "10.0.0.5"
    assert underlay_of("10.0.0.5") == "10.0.0.5"
    assert underlay_of("[fd00::1]:80") == "fd00::1"


# ---- published ports ------------------------------------------------------------------------------


def test_ports_left_at_zero_are_picked_from_the_range_and_kept():
    a = service("a", "a", ports=[P(target_port=80)])
    b = service("b", "b", ports=[P(target_port=80, published_port=30000)])
    picked = portrules.assign([a, b], {})
    assert picked["a"][0].published_port == 30001  # 30000 is b's
    rec = {"a": pb.ServiceEndpoint(service_id="a", endpoint=pb.Endpoint(ports=picked["a"]))}
    c = service("0", "c", ports=[P(target_port=80)])  # sorts first: would take 30001 without a's record
    again = portrules.assign([a, b, c], rec)
    assert again["a"][0].published_port == 30001 and again["0"][0].published_port == 30002


def test_a_host_mode_port_is_left_as_asked():
    a = service("a", "a", ports=[P(target_port=80, publish_mode=P.HOST)])
    assert portrules.assign([a], {})["a"][0].published_port == 0


def test_a_port_clash_names_the_holder_and_protocols_do_not_clash():
    web = service("w", "web", ports=[P(target_port=80, published_port=8080)])
    assert (
        portrules.clash(service("x", "x", ports=[P(target_port=1, published_port=8080)]).spec, [web])
        == "port 8080/tcp is already published by service web"
    )
    assert (
        portrules.clash(
            service("x", "x", ports=[P(target_port=1, published_port=8080, protocol=P.UDP)]).spec, [web]
        )
        is None
    )
    assert (
        portrules.clash(
            service("x", "x", ports=[P(target_port=1, published_port=8080, publish_mode=P.HOST)]).spec, [web]
        )
        is None
    )
    picked = pb.ServiceEndpoint(
        service_id="w", endpoint=pb.Endpoint(ports=[P(target_port=90, published_port=30000)])
    )
    assert (
        portrules.clash(
            service("x", "x", ports=[P(target_port=1, published_port=30000)]).spec, [web], {"w": picked}
        )
        == "port 30000/tcp is already published by service web"
    )


def test_a_node_keeps_its_network_address_only_while_it_runs_a_task_there(world):
    ipam, snap = world
    allocate(ipam, snap)
    assert ipam.network("web").addresses.lookup("node:node1") is not None
    snap.tasks["t1"] = (snap.tasks["t1"][0], pb.COMPLETE)
    plan = allocate(ipam, snap)
    assert ipam.network("web").addresses.lookup("node:node1") is None
    assert ipam.network("ingress").addresses.lookup("node:node1") is not None  # every node stays on ingress
    assert [o.network for o in plan.nodenets["node1"].overlays] == ["ingress"]


def test_a_removed_network_is_given_back_once_its_last_task_ended(world):
    ipam, snap = world
    allocate(ipam, snap)
    del snap.services["s-app"]
    del snap.networks["n-web"]  # removed while t1 still runs on it (its service is gone)
    assert not forget(ipam, "web")  # what `network rm` does: marked removed, kept while addresses are held
    allocate(ipam, snap)
    assert "web" in ipam.networks  # t1 and t2 still hold their addresses there
    snap.tasks["t1"] = (snap.tasks["t1"][0], pb.SHUTDOWN)
    allocate(ipam, snap)
    assert "web" in ipam.networks  # t2 (not placed yet) still does
    snap.tasks["t2"] = (snap.tasks["t2"][0], pb.REJECTED)
    allocate(ipam, snap)
    assert "web" not in ipam.networks and ipam.pool.lookup("network/web") is None


def test_a_network_being_created_is_not_dropped_before_its_object_is_seen(world):
    ipam, snap = world
    allocate(ipam, snap)
    ipam.create_network("db")  # `network create` writes the plan entry first, then the object
    allocate(ipam, snap)  # a pass in between sees the entry without its object
    assert "db" in ipam.networks
    snap.networks["n-db"] = pb.Network(id="n-db", spec=pb.NetworkSpec(name="db", driver="overlay"))
    snap.services["s-app"].spec.networks.add(target="n-db")
    plan = allocate(ipam, snap)
    assert not plan.problems
    assert any(v.network == "db" for v in plan.endpoints["s-app"].endpoint.virtual_ips)
