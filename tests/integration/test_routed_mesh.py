"""The routing mesh between two nodes on one link, by plain routes (worker/network/routes.py), on namespaces.

``h1`` (192.168.92.1) and ``h2`` (.2) share a veth link; a client ``c`` hangs off h1 on a link of its own
(192.168.78.0/24). Task ``t1`` sits on h1's bridge (10.210.1.0/24), ``t2`` on h2's (10.210.2.0/24), each
an HTTP server. Each host routes the other's task subnet straight to it; h1's published port DNATs to
t2's bridge address, as ``mesh_for`` does for a node whose subnet is routed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from shoal.worker.network import routes
from shoal.worker.network.nft import Endpoint, Frontend, Mesh
from shoal.worker.network.nftapply import Nft
from shoal.worker.network.node import NodeNet, task_ifname
from shoal.worker.network.topology import NodeNetwork, NodeSpec
from tests.integration.netkit import Kit, clients, labels, needs_root, sh

pytestmark = [*needs_root, pytest.mark.skipif(sh("which", "nft", check=False) == "", reason="needs nft (nftables)")]

UNDERLAY = {1: "192.168.92.1", 2: "192.168.92.2"}
SUBNET = {1: "10.210.1.0/24", 2: "10.210.2.0/24"}
TASK = {1: "10.210.1.2", 2: "10.210.2.2"}
PUBLISHED = 30080


@dataclass
class Pair:
    kit: Kit
    nets: dict[int, NodeNet]

    def ns(self, short: str) -> str:
        return f"{self.kit.prefix}{short}"


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    kit = Kit()
    p = Pair(kit, {})
    try:
        for short in ("h1", "h2", "t1", "t2", "c"):
            kit.ns(short)
        kit.veth(p.ns("h1"), "eth0", p.ns("h2"), "eth0")
        kit.veth(p.ns("h1"), "eth1", p.ns("c"), "eth0")
        kit.ip(p.ns("c"), "addr add 192.168.78.9/24 dev eth0\nroute add default via 192.168.78.1\n")
        kit.ip(p.ns("h1"), "addr add 192.168.78.1/24 dev eth1\n")
        for i in (1, 2):
            kit.ip(p.ns(f"h{i}"), f"addr add {UNDERLAY[i]}/24 dev eth0\n")
            net = p.nets[i] = NodeNet(kit.path(p.ns(f"h{i}")))
            await net.open()
            net.enable_forwarding()
            gw = SUBNET[i].replace(".0/24", ".1")
            await net.ensure_bridge("shoal0", f"{gw}/24")
            await net.attach_task("shoal0", kit.path(p.ns(f"t{i}")), task_ifname(f"t{i}"), f"{TASK[i]}/24", gateway=gw)
            kit.serve(p.ns(f"t{i}"), f"t{i}")
        yield p
    finally:
        for net in p.nets.values():
            await net.close()
        kit.close()


def shoal_routes(p: Pair, i: int) -> str:
    return p.kit.run(p.ns(f"h{i}"), "ip", "-4", "route", "show", "proto", str(routes.PROTO)).strip()


async def test_only_on_link_peers_are_routed_and_anothers_route_is_left_alone(pair):
    h1 = pair.ns("h1")
    pair.kit.ip(h1, "route add 10.9.9.0/24 via 192.168.92.2\nroute add 10.210.5.0/24 via 192.168.92.2\n")
    wanted = [(SUBNET[2], UNDERLAY[2]), ("10.210.3.0/24", "10.9.9.9"), ("10.210.5.0/24", UNDERLAY[2])]
    ipr = pair.nets[1].ipr
    assert await routes.ensure(ipr, wanted) == {SUBNET[2]}, "behind a gateway, or someone else's: not routed"
    assert shoal_routes(pair, 1) == f"{SUBNET[2]} via {UNDERLAY[2]} dev eth0"
    assert "10.210.5.0/24 via 192.168.92.2 dev eth0 \n" in pair.kit.run(h1, "ip", "-4", "route"), "left as it was"
    assert await routes.ensure(ipr, wanted) == {SUBNET[2]}, "twice is the same"
    assert await routes.ensure(ipr, []) == frozenset() and shoal_routes(pair, 1) == "", "a peer gone: its route too"
    await routes.ensure(ipr, wanted)
    assert sorted(await pair.nets[1].leftovers()) == sorted(["shoal0", task_ifname("t1"), f"route {SUBNET[2]}"])
    assert sorted(await pair.nets[1].cleanup()) == sorted(["shoal0", task_ifname("t1"), f"route {SUBNET[2]}"])
    assert await pair.nets[1].leftovers() == [] and shoal_routes(pair, 1) == ""
    assert "10.210.5.0/24 via 192.168.92.2" in pair.kit.run(h1, "ip", "-4", "route"), "not shoal's: kept"


async def routed_mesh(p: Pair) -> None:
    """Both hosts route each other's subnet; h1 publishes t2 at its bridge address (``mesh_for``'s choice)."""
    for i in (1, 2):
        assert await routes.ensure(p.nets[i].ipr, [(SUBNET[3 - i], UNDERLAY[3 - i])]) == {SUBNET[3 - i]}
    fe = Frontend("web", PUBLISHED, (Endpoint(TASK[2], 8080, False),))
    await Nft(p.kit.path(p.ns("h1"))).apply(Mesh((fe,), (SUBNET[1],), routed_subnets=(SUBNET[2],)))
    await Nft(p.kit.path(p.ns("h2"))).apply(Mesh((), (SUBNET[2],), routed_subnets=(SUBNET[1],)))


async def test_a_published_port_reaches_a_task_on_a_routed_node_masqueraded(pair):
    await routed_mesh(pair)
    answers = pair.kit.get(pair.ns("c"), UNDERLAY[1], PUBLISHED, 5)
    assert labels(answers) == {"t2": 5}
    assert clients(answers) == {UNDERLAY[1]}, "masqueraded to h1's address on the link, so replies come back"
    assert "vxlan" not in pair.kit.run(pair.ns("h1"), "ip", "-d", "link")


async def test_a_task_reaches_a_routed_nodes_tasks_only_through_the_mesh(pair):
    await routed_mesh(pair)
    assert pair.kit.get(pair.ns("t1"), TASK[2], 8080, 1)[0].startswith("error"), "h1 forwards no task to t2"
    assert labels(pair.kit.get(pair.ns("t1"), UNDERLAY[1], PUBLISHED, 2)) == {"t2": 2}, "but the mesh does"
    pair.kit.run(pair.ns("h1"), "nft", "delete", "table", "ip", "shoal")  # as if h1 let it through
    assert pair.kit.get(pair.ns("t1"), TASK[2], 8080, 1)[0].startswith("error"), "h2 refuses h1's tasks too"
    pair.kit.ip(pair.ns("h2"), f"route add 192.168.78.0/24 via {UNDERLAY[1]}\n")
    assert labels(pair.kit.get(pair.ns("c"), TASK[2], 8080, 1)) == {"t2": 1}, "an outside client still reaches t2"


async def test_a_node_routes_its_peers_subnets_only_with_direct_routing(pair):
    spec = NodeSpec(f"{SUBNET[1].replace('.0/24', '.1')}/24", UNDERLAY[1], (UNDERLAY[2],), uplink="eth0",
                    peer_subnets=((SUBNET[2], UNDERLAY[2]),))
    path = pair.kit.path(pair.ns("h1"))
    for direct, routed in ((False, frozenset()), (True, {SUBNET[2]}), (False, frozenset())):
        node = NodeNetwork(path, direct_routing=direct)  # as an agent started with or without the flag
        await node.open()
        try:
            await node.ensure(spec)
            assert node.routed == routed
            assert shoal_routes(pair, 1) == (f"{SUBNET[2]} via {UNDERLAY[2]} dev eth0" if direct else "")
        finally:
            await node.close()
