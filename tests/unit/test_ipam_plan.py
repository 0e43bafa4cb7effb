"""The cluster address plan (Ipam): nodes, overlay networks, VIPs, VXLAN ids, storage; with properties."""

from __future__ import annotations

import ipaddress
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.manager.ipam import DEFAULT_POOL, INGRESS, VXLAN_FIRST, AddressSpace, Ipam, IpamError

A = ipaddress.IPv4Address


def test_default_pool_is_the_documented_one():
    assert DEFAULT_POOL == "10.210.0.0/16"
    assert str(Ipam.create().pool.pool) == DEFAULT_POOL


def test_a_custom_pool_is_used_for_node_and_network_subnets():
    ipam = Ipam.create("172.28.0.0/20", node_prefix=26, network_prefix=24)
    assert str(ipam.node_subnet("n1").subnet) == "172.28.0.0/26"
    assert str(ipam.create_network("web").subnet) == "172.28.1.0/24"


@pytest.mark.parametrize(("pool", "kw", "msg"), [
    ("10.0.0.0/24", {"node_prefix": 16}, "a /16 node subnet does not fit"),
    ("10.0.0.0/16", {"network_prefix": 30}, "a /30 network subnet does not fit"),
    ("10.0.0.1/16", {}, "invalid address pool"),
])
def test_a_bad_pool_is_refused(pool, kw, msg):
    with pytest.raises(IpamError, match=msg):
        Ipam.create(pool, **kw)


def test_each_node_gets_its_own_subnet_and_keeps_it():
    ipam = Ipam.create()
    a, b = ipam.node_subnet("a"), ipam.node_subnet("b")
    assert not a.subnet.overlaps(b.subnet)
    assert ipam.node_subnet("a") is a


def test_task_addresses_come_from_the_node_subnet_with_its_prefix():
    ipam = Ipam.create()
    iface = ipam.task_address("n1", "task1")
    assert iface.network == ipam.node_subnet("n1").subnet
    assert iface.ip != ipam.node_subnet("n1").gateway
    assert ipam.task_address("n1", "task1") == iface


def test_a_node_that_leaves_frees_its_subnet_for_the_next_node():
    ipam = Ipam.create()
    gone = ipam.node_subnet("gone").subnet
    ipam.node_subnet("stays")
    ipam.release_node("gone")
    assert "gone" not in ipam.nodes
    assert ipam.node_subnet("new").subnet == gone


def test_networks_get_distinct_subnets_and_vxlan_ids():
    ipam = Ipam.create()
    web, db = ipam.create_network("web"), ipam.create_network("db")
    assert not web.subnet.overlaps(db.subnet)
    assert {web.vxlan_id, db.vxlan_id} == {VXLAN_FIRST, VXLAN_FIRST + 1}
    assert ipam.create_network(INGRESS).vxlan_id == VXLAN_FIRST + 2


def test_a_network_subnet_never_overlaps_a_node_subnet():
    ipam = Ipam.create()
    node = ipam.node_subnet("n1").subnet
    with pytest.raises(IpamError, match=f"overlaps {node} of node 'n1'"):
        ipam.create_network("web", subnet=str(node))
    assert "web" not in ipam.networks
    assert ipam.create_network("web").subnet != node


def test_an_overlapping_user_subnet_is_refused_and_nothing_changes():
    ipam = Ipam.create()
    ipam.create_network("web", subnet="10.50.0.0/24")
    before = ipam.to_dict()
    with pytest.raises(IpamError, match=r"subnet 10\.50\.0\.0/25 overlaps 10\.50\.0\.0/24 of network 'web'"):
        ipam.create_network("db", subnet="10.50.0.0/25")
    assert ipam.to_dict() == before


def test_duplicate_and_unknown_networks_are_refused():
    ipam = Ipam.create()
    ipam.create_network("web")
    with pytest.raises(IpamError, match="network 'web' already exists"):
        ipam.create_network("web")
    with pytest.raises(IpamError, match="network 'nope' not found"):
        ipam.vip("svc", "nope")
    with pytest.raises(IpamError, match="needs a name"):
        ipam.create_network("")


def test_a_removed_network_frees_its_subnet_and_vxlan_id():
    ipam = Ipam.create()
    web = ipam.create_network("web")
    ipam.create_network("db")
    ipam.remove_network("web")
    again = ipam.create_network("api")
    assert (again.subnet, again.vxlan_id) == (web.subnet, web.vxlan_id)


def test_a_network_in_use_cannot_be_removed():
    ipam = Ipam.create()
    ipam.create_network("web")
    for i in range(5):
        ipam.vip(f"s{i}", "web")
    with pytest.raises(IpamError, match=r"still has addresses in use \(vip:s0, vip:s1, vip:s2 and 2 more\)"):
        ipam.remove_network("web")
    ipam.release_vips("s0")
    for i in range(1, 5):
        ipam.release_vip(f"s{i}", "web")
    ipam.remove_network("web")
    assert "web" not in ipam.networks


def test_each_service_gets_one_vip_per_network():
    ipam = Ipam.create()
    ipam.create_network("a")
    ipam.create_network("b")
    va, vb = ipam.vip("web", "a"), ipam.vip("web", "b")
    assert va in ipam.network("a").subnet and vb in ipam.network("b").subnet
    assert ipam.vip("web", "a") == va
    assert ipam.vip("api", "a") != va


def test_vips_and_task_addresses_live_in_separate_blocks():
    ipam = Ipam.create()
    net = ipam.create_network("web", subnet="10.60.0.0/28")
    assert str(net.vip_block) == "10.60.0.12/30"
    vips = [ipam.vip(f"s{i}", "web") for i in range(3)]
    assert vips == [A("10.60.0.12"), A("10.60.0.13"), A("10.60.0.14")]  # .15 is the broadcast
    with pytest.raises(IpamError, match=r"block 10\.60\.0\.12/30 of subnet 10\.60\.0\.0/28 has no free address"):
        ipam.vip("s3", "web")
    tasks = {ipam.network_address("web", f"t{i}").ip for i in range(10)}
    assert tasks == {A(f"10.60.0.{i}") for i in range(2, 12)}
    with pytest.raises(IpamError, match=r"subnet 10\.60\.0\.0/28 has no free address left"):
        ipam.network_address("web", "t-extra")


def test_release_task_frees_its_addresses_everywhere():
    ipam = Ipam.create()
    ipam.create_network("web")
    node_ip = ipam.task_address("n1", "t1").ip
    net_ip = ipam.network_address("web", "t1").ip
    ipam.release_task("t1")
    assert ipam.node_subnet("n1").lookup("t1") is None
    assert ipam.network("web").addresses.lookup("t1") is None
    assert node_ip not in ipam.node_subnet("n1").owners and net_ip not in ipam.network("web").addresses.owners


def test_the_plan_round_trips_through_json():
    ipam = Ipam.create("10.77.0.0/16")
    ipam.task_address("n1", "t1")
    ipam.create_network("web", subnet="192.168.50.0/24")
    ipam.vip("svc", "web")
    ipam.network_address("web", "t1")
    back = Ipam.from_dict(json.loads(json.dumps(ipam.to_dict())))
    assert back == ipam
    assert back.to_dict() == ipam.to_dict()


def test_inconsistent_stored_data_is_refused():
    ipam = Ipam.create()
    ipam.node_subnet("n1")
    data = ipam.to_dict()
    data["nodes"]["n1"]["subnet"] = "10.210.9.0/24"
    with pytest.raises(IpamError, match="inconsistent: node/n1 has 10.210.9.0/24"):
        Ipam.from_dict(data)


# -- properties ---------------------------------------------------------------------------------
ops = st.lists(st.tuples(st.sampled_from(["alloc", "release"]), st.integers(0, 9)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_no_address_is_ever_held_twice_and_release_frees(steps):
    space = AddressSpace.of("10.9.0.0/29")  # 5 usable: owners compete for them
    model: dict[str, A] = {}
    for op, n in steps:
        owner = f"t{n}"
        if op == "alloc":
            try:
                addr = space.allocate(owner)
            except IpamError:
                assert len(model) == space.capacity and owner not in model
                continue
            assert model.setdefault(owner, addr) == addr
        else:
            assert space.release(owner) == model.pop(owner, None)
        assert len(set(space.owners)) == len(space.owners.values()) == len(model)
        assert {space.lookup(o) for o in model} == set(model.values())
        assert all(space.subnet.network_address + 2 <= a < space.subnet.broadcast_address for a in space.owners)
    assert AddressSpace.from_dict(space.to_dict()) == space


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 5))
def test_release_then_reuse_fills_the_subnet_again(k):
    space = AddressSpace.of("10.9.0.0/29")
    held = {space.allocate(f"t{i}") for i in range(5)}
    for i in range(k):
        space.release(f"t{i}")
    again = {space.allocate(f"n{i}") for i in range(k)}
    assert again <= held and len(again) == k
    assert set(space.owners) == held


subnet_ops = st.lists(
    st.one_of(
        st.tuples(st.just("node"), st.integers(0, 6), st.just(None)),
        st.tuples(st.just("net"), st.integers(0, 6),
                  st.one_of(st.none(), st.sampled_from(["10.210.0.0/23", "10.210.2.0/24", "10.210.3.128/25",
                                                        "10.210.0.0/22", "10.211.0.0/24"]))),
        st.tuples(st.just("rmnode"), st.integers(0, 6), st.just(None)),
        st.tuples(st.just("rmnet"), st.integers(0, 6), st.just(None)),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(subnet_ops)
def test_subnets_never_overlap_and_vxlan_ids_are_unique(steps):
    ipam = Ipam.create("10.210.0.0/21")
    for op, n, subnet in steps:
        try:
            if op == "node":
                ipam.node_subnet(f"n{n}")
            elif op == "net":
                ipam.create_network(f"w{n}", subnet)
            elif op == "rmnode":
                ipam.release_node(f"n{n}")
            elif f"w{n}" in ipam.networks:
                ipam.remove_network(f"w{n}")
        except IpamError:
            pass
        nets = list(ipam.pool.taken)
        assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])
        assert len(nets) == len(ipam.nodes) + len(ipam.networks)
        ids = [n.vxlan_id for n in ipam.networks.values()]
        assert len(ids) == len(set(ids)) and all(i >= VXLAN_FIRST for i in ids)
    assert Ipam.from_dict(json.loads(json.dumps(ipam.to_dict()))) == ipam


def test_each_node_has_its_own_address_on_a_network_released_when_it_leaves():
    ipam = Ipam.create()
    ipam.create_network("web")
    a, b = ipam.node_address("web", "n1"), ipam.node_address("web", "n2")
    assert a != b and a.network == b.network == ipam.network("web").subnet
    assert ipam.node_address("web", "n1") == a
    ipam.release_node("n1")
    assert ipam.network("web").addresses.lookup("node:n1") is None
    assert ipam.network("web").addresses.lookup("node:n2") == b.ip
