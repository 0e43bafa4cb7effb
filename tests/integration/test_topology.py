"""NodeNetwork: a node's whole network shape from a NodeSpec, tasks attached by name, on two namespace hosts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from shoal.manager.ipam import Ipam
from shoal.worker.network.links import PlumbingError
from shoal.worker.network.node import task_ifname
from shoal.worker.network.topology import NodeNetwork, NodeSpec, OverlaySpec
from tests.integration.netkit import Kit, needs_root

pytestmark = needs_root

UNDERLAY = {"h1": "192.168.92.1", "h2": "192.168.92.2"}
TASKS = {"t1": ("h1", ["db", "web"]), "t2": ("h2", ["web"])}


@dataclass
class Two:
    kit: Kit
    ipam: Ipam
    nets: dict[str, NodeNetwork]

    def ns(self, short: str) -> str:
        return f"{self.kit.prefix}{short}"

    def spec(self, host: str, networks: tuple[str, ...] = ("db", "web")) -> NodeSpec:
        node = self.ipam.node_subnet(host)
        overlays = tuple(
            OverlaySpec(n, self.ipam.network(n).vxlan_id, str(self.ipam.network(n).subnet),
                        str(self.ipam.node_address(n, host)), str(self.ipam.network(n).vip_block))
            for n in networks
        )
        return NodeSpec(f"{node.gateway}/{node.subnet.prefixlen}", UNDERLAY[host],
                        tuple(a for h, a in UNDERLAY.items() if h != host), overlays, uplink="eth0")

    async def attach(self, task: str, net: NodeNetwork | None = None, new: bool = False) -> None:
        host, networks = TASKS[task]
        await (net or self.nets[host]).attach(
            task, self.kit.path(self.ns(task)), str(self.ipam.task_address(host, task)),
            {n: str(self.ipam.network_address(n, task)) for n in networks}, new=new)


def link_table(two: Two) -> list[tuple[str, ...]]:
    """(index, name, mtu, alias) of every link of h1: what a re-run must not change."""
    out = []
    for line in two.kit.run(two.ns("h1"), "ip", "-o", "link").splitlines():
        f = line.split()
        out.append((f[0], f[1], f[f.index("mtu") + 1], f[f.index("alias") + 1] if "alias" in f else ""))
    return out


@pytest.fixture
async def two() -> AsyncIterator[Two]:
    kit = Kit()
    ipam = Ipam.create()
    ipam.create_network("web")
    ipam.create_network("db")
    t = Two(kit, ipam, {})
    try:
        for short in ("h1", "h2", "t1", "t2"):
            kit.ns(short)
        kit.veth(t.ns("h1"), "eth0", t.ns("h2"), "eth0")
        for host, addr in UNDERLAY.items():
            kit.ip(t.ns(host), f"addr add {addr}/24 dev eth0\n")
            t.nets[host] = NodeNetwork(kit.path(t.ns(host)))
            await t.nets[host].open()
        yield t
    finally:
        for net in t.nets.values():
            await net.close()
        kit.close()


async def test_tasks_get_eth0_and_one_interface_per_network_in_name_order(two):
    for host in UNDERLAY:
        await two.nets[host].ensure(two.spec(host))
    for task in TASKS:
        await two.attach(task)
    links = two.kit.run(two.ns("t1"), "ip", "-4", "-o", "addr").split("\n")
    by_if = {line.split()[1]: line.split()[3] for line in links if line}
    assert by_if == {"lo": "127.0.0.1/8", "eth0": str(two.ipam.task_address("h1", "t1")),
                     "eth1": str(two.ipam.network_address("db", "t1")),
                     "eth2": str(two.ipam.network_address("web", "t1"))}
    routes = two.kit.run(two.ns("t1"), "ip", "-4", "route")
    gw = two.ipam.node_subnet("h1").gateway
    assert f"default via {gw} dev eth0" in routes
    assert f"{two.ipam.network('web').vip_block} via {gw} dev eth0" in routes
    mtu = two.kit.run(two.ns("t1"), "cat", "/sys/class/net/eth2/mtu").strip()
    assert mtu == "1450"


async def test_tasks_on_the_same_network_talk_across_hosts(two):
    for host in UNDERLAY:
        await two.nets[host].ensure(two.spec(host))
    for task in TASKS:
        await two.attach(task)
    two.kit.serve(two.ns("t2"), "t2")
    t2 = str(two.ipam.network_address("web", "t2").ip)
    assert two.kit.get(two.ns("t1"), t2, 8080, 2) == [f"t2 {two.ipam.network_address('web', 't1').ip}"] * 2


async def test_ensure_again_changes_nothing_and_drops_overlays_no_longer_listed(two):
    net = two.nets["h1"]
    await net.ensure(two.spec("h1"))
    await two.attach("t1")
    before = link_table(two)
    fresh = NodeNetwork(two.kit.path(two.ns("h1")))  # a restarted agent
    await fresh.open()
    try:
        await fresh.ensure(two.spec("h1"))
        await two.attach("t1", fresh)
        assert link_table(two) == before
        db = two.ipam.network("db").vxlan_id
        await fresh.ensure(two.spec("h1", ("web",)))
    finally:
        await fresh.close()
    names = two.kit.run(two.ns("h1"), "ls", "/sys/class/net").split()
    assert f"shvx{db}" not in names and f"shob{db}" not in names
    web = two.ipam.network("web").vxlan_id
    assert f"shvx{web}" in names and "shoal0" in names


async def test_attaching_before_ensure_or_to_an_unknown_network_is_refused(two):
    net = two.nets["h2"]
    with pytest.raises(PlumbingError, match="not set up yet"):
        await two.attach("t2")
    await net.ensure(two.spec("h2", ("db",)))
    with pytest.raises(PlumbingError, match="network 'web' is not on this node"):
        await two.attach("t2")


async def test_cleanup_and_local_subnets(two):
    spec = two.spec("h1")
    assert spec.local_subnets() == (str(two.ipam.node_subnet("h1").subnet), str(two.ipam.network("db").subnet),
                                    str(two.ipam.network("web").subnet))
    await two.nets["h1"].ensure(spec)
    await two.attach("t1")
    await two.nets["h1"].detach([task_ifname("t1"), task_ifname("t1", "db")])
    assert "eth1" not in two.kit.run(two.ns("t1"), "ls", "/sys/class/net").split()
    removed = await two.nets["h1"].cleanup()
    assert "shoal0" in removed and len(removed) == 1 + 2 * 2 + 1  # bridge, 2 x (bridge + vxlan), the web veth
    assert sorted(two.kit.run(two.ns("h1"), "ls", "/sys/class/net").split()) == ["eth0", "lo"]


async def test_a_new_namespace_is_wired_as_the_idempotent_path_would_wire_it(two):
    """``new``: the pair made with its MTU, bridge and state at once; an agent that re-adopts the task
    later (the idempotent path) finds nothing to change, and a leftover veth of that name falls back."""
    await two.nets["h1"].ensure(two.spec("h1"))
    two.kit.ip(two.ns("h1"), f"link add {task_ifname('t1', 'web')} type veth peer name leftover0\n")  # a crashed agent's leftover
    await two.attach("t1", new=True)
    by_if = {line.split()[1]: line.split()[3] for line in two.kit.run(two.ns("t1"), "ip", "-4", "-o", "addr").splitlines()}
    assert by_if == {"lo": "127.0.0.1/8", "eth0": str(two.ipam.task_address("h1", "t1")),
                     "eth1": str(two.ipam.network_address("db", "t1")), "eth2": str(two.ipam.network_address("web", "t1"))}
    gw = two.ipam.node_subnet("h1").gateway
    routes = two.kit.run(two.ns("t1"), "ip", "-4", "route")
    assert f"default via {gw} dev eth0" in routes and f"{two.ipam.network('web').vip_block} via {gw} dev eth0" in routes
    host_if = task_ifname("t1")
    assert two.kit.run(two.ns("h1"), "cat", f"/sys/class/net/{host_if}/brport/hairpin_mode").strip() == "1"
    assert two.kit.run(two.ns("h1"), "cat", f"/sys/class/net/{host_if}/ifalias").strip() == "shoal-net:task"
    assert "state UP" in two.kit.run(two.ns("t1"), "ip", "link", "show", "eth0")
    before = link_table(two)
    await two.attach("t1")
    assert link_table(two) == before


async def test_ensure_after_a_first_pass_drops_a_removed_overlay_by_name(two):
    net = two.nets["h1"]
    await net.ensure(two.spec("h1"))
    await net.ensure(two.spec("h1"))  # unchanged: nothing to do
    db, web = two.ipam.network("db").vxlan_id, two.ipam.network("web").vxlan_id
    await net.ensure(two.spec("h1", ("web",)))
    names = two.kit.run(two.ns("h1"), "ls", "/sys/class/net").split()
    assert f"shvx{db}" not in names and f"shob{db}" not in names and f"shvx{web}" in names
    await net.ensure(two.spec("h1"))
    assert f"shvx{db}" in two.kit.run(two.ns("h1"), "ls", "/sys/class/net").split(), "an overlay back in the spec is made again"
