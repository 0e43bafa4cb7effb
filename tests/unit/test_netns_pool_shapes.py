"""The pool's bookkeeping without the kernel: which shapes it keeps ready, what a new node spec drops.

A shape is a task's ports under the node spec (``task_ports``); entries here are plain records, never
made (the pool's filler does not run), so each rule is checked on its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.worker.network.links import PlumbingError
from shoal.worker.network.pool import NetnsPool
from shoal.worker.network.prewire import Prewired, TaskPort, host_names, pool_ifname
from shoal.worker.network.topology import NodeSpec, OverlaySpec, task_ports

WEB = OverlaySpec(name="web", vni=4100, subnet="10.0.1.0/24", node_address="10.0.1.250/24", vip_block="10.0.9.0/24")
BACK = OverlaySpec(name="back", vni=4101, subnet="10.0.2.0/24", node_address="10.0.2.250/24", vip_block="10.0.8.0/24")
SPEC = NodeSpec(gateway="10.211.1.1/24", underlay="192.168.1.1", overlays=(WEB, BACK), mtu=1500)


def entry(ports: tuple[TaskPort, ...], n: int) -> Prewired:
    return Prewired(f"e{n}", f"/nowhere/e{n}/netns", ports, tuple(range(len(ports))), tuple(range(len(ports))))


def test_task_ports_are_eth0_on_the_node_bridge_then_each_network_in_name_order() -> None:
    ports = task_ports(SPEC, ["web", "back"])
    assert [(p.network, p.bridge, p.ifname, p.mtu) for p in ports] == [
        ("", "shoal0", "eth0", 1500), ("back", "shob4101", "eth1", 1450), ("web", "shob4100", "eth2", 1450)]
    assert ports[0].gateway == "10.211.1.1" and ports[0].routes == ()
    assert ports[2].gateway is None and ports[2].routes == (("10.0.9.0/24", "10.211.1.1"),)


def test_task_ports_refuse_a_network_the_node_is_not_on() -> None:
    with pytest.raises(PlumbingError, match="'front' is not on this node"):
        task_ports(SPEC, ["front"])


def test_a_take_finds_nothing_at_first_and_asks_for_that_shape(tmp_path: Path) -> None:
    pool = NetnsPool(tmp_path, size=2)
    web = task_ports(SPEC, ["web"])
    assert pool.take(web) is None
    assert list(pool.wanted) == [web]
    pool.ready[web] = [entry(web, 1), entry(web, 2)]
    assert pool.take(web) == entry(web, 1)  # the oldest first
    assert pool.count() == 1


def test_only_the_shapes_taken_last_are_kept_and_a_dropped_shapes_entries_go(tmp_path: Path) -> None:
    pool = NetnsPool(tmp_path, size=2, shapes=2)
    plain, web, back = task_ports(SPEC, []), task_ports(SPEC, ["web"]), task_ports(SPEC, ["back"])
    pool.take(plain)
    pool.take(web)
    pool.take(plain)  # plain is the newest again
    pool.ready[plain] = [entry(plain, 1)]
    pool.take(back)  # web, the least recent, goes
    assert list(pool.wanted) == [plain, back]
    pool.take(web)  # and now plain goes, with its entry
    assert list(pool.wanted) == [back, web]
    assert plain not in pool.ready and pool._doomed == [entry(plain, 1)]


def test_a_spec_change_drops_only_the_shapes_it_changes(tmp_path: Path) -> None:
    pool = NetnsPool(tmp_path)
    plain, web, back = task_ports(SPEC, []), task_ports(SPEC, ["web"]), task_ports(SPEC, ["back"])
    for n, shape in enumerate((plain, web, back)):
        pool.take(shape)
        pool.ready[shape] = [entry(shape, n)]
    pool.retain(NodeSpec(gateway=SPEC.gateway, underlay=SPEC.underlay, overlays=(WEB,), peers=("192.168.1.2",)))
    assert set(pool.wanted) == {plain, web}  # back left the node; new peers change no task's ports
    assert pool._doomed == [entry(back, 2)]
    pool.retain(NodeSpec(gateway=SPEC.gateway, underlay=SPEC.underlay, overlays=(WEB,), mtu=9000))
    assert not pool.wanted and not pool.ready  # another MTU: every interface would differ


def test_a_new_gateway_or_vip_block_drops_the_shapes_that_route_through_them(tmp_path: Path) -> None:
    pool = NetnsPool(tmp_path)
    plain, web = task_ports(SPEC, []), task_ports(SPEC, ["web"])
    pool.take(plain)
    pool.take(web)
    moved = OverlaySpec(name="web", vni=4100, subnet="10.0.1.0/24", node_address="10.0.1.250/24", vip_block="10.0.7.0/24")
    pool.retain(NodeSpec(gateway=SPEC.gateway, underlay=SPEC.underlay, overlays=(moved, BACK)))
    assert list(pool.wanted) == [plain]
    pool.retain(NodeSpec(gateway="10.211.2.1/24", underlay=SPEC.underlay))
    assert not pool.wanted


def test_a_pool_of_size_zero_is_off(tmp_path: Path) -> None:
    pool = NetnsPool(tmp_path, size=0)
    assert pool.take(task_ports(SPEC, [])) is None and not pool.wanted


def test_pooled_interface_names_fit_the_kernels_limit_and_differ_per_entry_and_network() -> None:
    names = {pool_ifname(e, n) for e in ("a1", "a2") for n in ("", "web")}
    assert len(names) == 4 and all(len(n) <= 15 and n.startswith("shp") for n in names)


def test_a_claimed_entry_names_its_veths_by_network_as_the_pool_made_them() -> None:
    e = entry(task_ports(SPEC, ["web", "back"]), 7)
    assert host_names(e) == {"": pool_ifname("e7", ""), "back": pool_ifname("e7", "back"), "web": pool_ifname("e7", "web")}


def test_a_shape_whose_entries_ran_out_keeps_one_more_up_to_the_most(tmp_path: Path) -> None:
    pool = NetnsPool(tmp_path, size=2, max_size=3)
    web = task_ports(SPEC, ["web"])
    assert pool.take(web) is None and pool.target(web) == 2, "a shape met for the first time: no burst yet"
    pool.ready[web] = [entry(web, 1)]
    assert pool.take(web) == entry(web, 1) and pool.target(web) == 2, "found one ready: the pool was wide enough"
    assert pool.take(web) is None and pool.target(web) == 3, "all taken: a burst wider than the pool"
    assert pool.take(web) is None and pool.target(web) == 3, "never past max_size"


def test_a_dropped_shape_forgets_how_far_it_grew(tmp_path: Path) -> None:
    pool = NetnsPool(tmp_path, size=1, shapes=1, max_size=4)
    web, back = task_ports(SPEC, ["web"]), task_ports(SPEC, ["back"])
    for _ in range(3):
        pool.take(web)
    assert pool.target(web) == 3
    pool.take(back)  # web drops out (one shape kept)
    pool.take(web)
    assert pool.target(web) == 1
