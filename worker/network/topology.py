"""One call per change for the agent: the node's whole network shape from plain data, and each task's.

``NodeNetwork.ensure(NodeSpec)`` makes the node match its spec: the task bridge ``shoal0`` with the
gateway of the node's subnet; per overlay network (VXLAN id ``vni``) a bridge ``shob<vni>`` holding the
node's own address on it and a VXLAN device ``shvx<vni>`` flooding to the other nodes; overlays the
spec no longer lists are taken down; with ``direct_routing``, the task subnets of the other nodes on this
node's link are routed straight to them (``routes``: the mesh reaches their tasks without VXLAN), and
those reached over the device holding this node's underlay address make its direct server return
(``dsr``, see dsr.py).
``attach`` gives a task ``eth0`` on the node bridge (default route via the gateway) and one interface
per network, ``eth1``... in network-name order, each with a route
for the network's VIP block via the node (the mesh balances VIPs there). Names, MTUs and routes are
decided here once, so the agent, a restarted agent and ``cleanup`` all agree on them; a task that took
a namespace of the pool keeps the pool's names for its node-side veths (``host_names``: the caller
records them with the task, see tasknet.py). Attaching and
detaching a task run on a loop of their own (``sideloop``) with their own socket on the node: the kernel
may make them wait, and the agent's loop must not wait with them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from shoal.worker.network import links, prewire, routes
from shoal.worker.network.dsr import Link
from shoal.worker.network.nfttable import OVERLAY_BRIDGES
from shoal.worker.network.node import VXLAN_OVERHEAD, NodeNet, task_ifname
from shoal.worker.network.prewire import Ports, Prewired, TaskPort
from shoal.worker.network.sideloop import SideLoop

NODE_BRIDGE = "shoal0"


@dataclass(frozen=True)
class OverlaySpec:
    """An overlay network on this node: its VXLAN id, subnet, VIP block and the node's address in it."""

    name: str
    vni: int
    subnet: str
    node_address: str  # address/prefix
    vip_block: str
    peers: tuple[str, ...] | None = None  # the other nodes on this network (None: the node's ``peers``)


@dataclass(frozen=True)
class NodeSpec:
    """Everything the node's plumbing follows: its subnet's gateway, its underlay and its overlays."""

    gateway: str  # address/prefix of the node bridge (first host of the node's subnet)
    underlay: str  # this node's own address: the source of VXLAN packets
    peers: tuple[str, ...] = ()  # the other nodes' underlay addresses
    overlays: tuple[OverlaySpec, ...] = ()
    uplink: str | None = None  # the device the underlay address is on
    mtu: int = 1500  # the underlay's MTU
    forwarding: bool = True
    peer_subnets: tuple[tuple[str, str], ...] = ()  # (task subnet, underlay) of the other nodes (see routes.py)

    def overlay(self, name: str) -> OverlaySpec | None:
        """The overlay called ``name``, if the node is on it."""
        return next((o for o in self.overlays if o.name == name), None)

    def local_subnets(self) -> tuple[str, ...]:
        """The node's subnet and its overlays' (the mesh's ``local_subnets``)."""
        node = str(ipaddress.IPv4Interface(self.gateway).network)
        return (node, *(o.subnet for o in self.overlays))


def bridge_of(vni: int) -> str:
    """The node-side bridge of the overlay with VXLAN id ``vni``."""
    return f"{OVERLAY_BRIDGES}{vni}"


def vxlan_of(vni: int) -> str:
    """The VXLAN device of the overlay with VXLAN id ``vni``."""
    return f"shvx{vni}"


def task_ports(spec: NodeSpec, networks: Iterable[str]) -> Ports:
    """A task's interfaces under ``spec``: ``eth0`` on the node bridge with the default route, then one per
    network in name order (``eth1``...) on its overlay's bridge, with a route for its VIP block via the node."""
    gateway = str(ipaddress.IPv4Interface(spec.gateway).ip)
    ports = [TaskPort("", NODE_BRIDGE, "eth0", spec.mtu, gateway)]
    for i, name in enumerate(sorted(networks), start=1):
        o = spec.overlay(name)
        if o is None:
            raise links.PlumbingError(f"network {name!r} is not on this node (ensure it first)")
        ports.append(TaskPort(name, bridge_of(o.vni), f"eth{i}", spec.mtu - VXLAN_OVERHEAD, None, ((o.vip_block, gateway),)))
    return tuple(ports)


def addresses(node_address: str, networks: dict[str, str]) -> list[str]:
    """A task's addresses in the order of its ``task_ports``."""
    return [node_address, *(networks[name] for name in sorted(networks))]


class NodeNetwork:
    """The agent's handle on its node's plumbing (``netns``: None for its own namespace)."""

    def __init__(self, netns: str | None = None, direct_routing: bool = False) -> None:
        self.net = NodeNet(netns)
        self.direct_routing = direct_routing
        """Route the other nodes' task subnets to them when on this node's link (``--direct-routing``)."""
        self.spec: NodeSpec | None = None
        self.routed: frozenset[str] = frozenset()
        """The other nodes' task subnets routed straight to them (on this node's link; see routes.py)."""
        self.dsr: Link | None = None
        """This node's uplink and the peers routed over it: direct server return with them (dsr.py)."""
        self.side = SideLoop("shoal-wiring")
        """Where tasks are attached and detached, off the caller's loop (see sideloop)."""
        self._side_net: NodeNet | None = None  # the node's socket for the side loop, opened there

    async def open(self) -> None:
        """Open the node's netlink socket (once, for the agent's lifetime)."""
        await self.net.open()

    async def close(self) -> None:
        """Close its sockets and stop the side loop; the devices stay (``cleanup`` removes them)."""
        if self.side.running:
            await self.side.run(self._close_side)
            await self.side.close()
        await self.net.close()

    async def _on_side(self) -> NodeNet:
        """The node's netlink socket of the side loop (run there)."""
        if self._side_net is None:
            net = NodeNet(self.net.netns)
            await net.open()
            if self._side_net is not None:  # another wiring opened one meanwhile
                await net.close()
            else:
                self._side_net = net
        return self._side_net

    async def _close_side(self) -> None:
        net, self._side_net = self._side_net, None
        if net is not None:
            await net.close()

    async def ensure(self, spec: NodeSpec) -> None:
        """Make the node match ``spec`` (idempotent; tasks already attached keep their interfaces).

        After a first full pass, only what differs from the spec made last is touched: an overlay this
        node already has, with the same peers, is left as it is, and an overlay the spec drops is
        deleted by name, without dumping every link and FDB entry of the node again (with hundreds of
        task veths that dump cost more than the change, and the map changes at every deploy)."""
        old = self.spec
        same_node = old is not None and (old.underlay, old.uplink, old.mtu, old.peers) == (
            spec.underlay, spec.uplink, spec.mtu, spec.peers)
        if spec.forwarding:
            self.net.enable_forwarding()
        if not same_node or old is None or old.gateway != spec.gateway:
            await self.net.ensure_bridge(NODE_BRIDGE, spec.gateway, mtu=spec.mtu)
        inner = spec.mtu - VXLAN_OVERHEAD
        for o in spec.overlays:
            if same_node and old is not None and o in old.overlays:
                continue
            await self.net.ensure_bridge(bridge_of(o.vni), o.node_address, mtu=inner)
            await self.net.ensure_vxlan(vxlan_of(o.vni), o.vni, bridge_of(o.vni), local=spec.underlay,
                                        dev=spec.uplink, mtu=inner)
            await self.net.set_peers(vxlan_of(o.vni), spec.peers if o.peers is None else o.peers)
        keep = {o.vni for o in spec.overlays}
        if old is None:
            await self._drop_overlays_except(keep)
        else:
            for vni in {o.vni for o in old.overlays} - keep:
                await links.delete(self.net.ipr, vxlan_of(vni))
                await links.delete(self.net.ipr, bridge_of(vni))
        if not same_node or old is None or old.peer_subnets != spec.peer_subnets:
            self.routed = await routes.ensure(self.net.ipr, spec.peer_subnets if self.direct_routing else ())
            self.dsr = await self._dsr_link(spec)
        self.spec = spec

    async def _dsr_link(self, spec: NodeSpec) -> Link | None:
        """Direct server return with the routed peers reached over the device holding this node's underlay
        address (None: no such peer)."""
        if not self.routed or (uplink := await routes.device_holding(self.net.ipr, spec.underlay)) is None:
            return None
        peers = [(underlay, subnet) for subnet, underlay in spec.peer_subnets
                 if str(ipaddress.IPv4Network(subnet)) in self.routed and await routes.link_to(self.net.ipr, underlay) == uplink[0]]
        return Link(uplink[1], spec.underlay, tuple(sorted(peers))) if peers else None

    async def _drop_overlays_except(self, keep: set[int]) -> None:
        for name, kind in await links.marked(self.net.ipr):
            if kind in ("vxlan", "bridge") and name[:4] in ("shvx", "shob") and name[4:].isdigit() \
                    and int(name[4:]) not in keep:
                await links.delete(self.net.ipr, name)

    async def attach(self, task_id: str, netns: str, node_address: str, networks: dict[str, str], new: bool = False,
                     host_names: dict[str, str] | None = None) -> None:
        """Wire task ``task_id`` (namespace ``netns``): ``node_address`` on eth0, ``networks`` {name: addr/prefix};
        ``new``: the namespace was made just now and holds nothing yet (NodeNet.attach_task); ``host_names``:
        the node-side veth names by network where they are not ``task_ifname``'s (a pooled namespace's). Runs
        on the side loop: the caller's loop goes on while the kernel makes the links."""
        ports = task_ports(self._spec(), networks)
        names = [(host_names or {}).get(p.network) or task_ifname(task_id, p.network) for p in ports]
        await self.side.run(lambda: self._attach(ports, names, netns, addresses(node_address, networks), new))

    async def _attach(self, ports: Ports, names: list[str], netns: str, addrs: list[str], new: bool) -> None:
        net = await self._on_side()
        for port, name, address in zip(ports, names, addrs, strict=True):
            await net.attach_task(port.bridge, netns, name, address, gateway=port.gateway,
                                  ifname=port.ifname, mtu=port.mtu, routes=port.routes, new=new)

    async def claim(self, entry: Prewired, netns: str, node_address: str, networks: dict[str, str]) -> bool:
        """Give a task the pooled namespace ``entry`` (see pool.py): it is bound at ``netns`` and its interfaces
        get the task's addresses, on the side loop; they keep their names (``prewire.host_names``). False when
        the entry's namespace could not be moved (it is gone: the caller wires the task the slow way); an
        error after that raises."""
        return await self.side.run(lambda: self._claim(entry, netns, addresses(node_address, networks)))

    async def _claim(self, entry: Prewired, netns: str, addrs: list[str]) -> bool:
        if not prewire.move(entry, netns):
            return False
        await prewire.claim(entry, netns, addrs)
        return True

    async def detach(self, host_names: Iterable[str]) -> None:
        """Remove a task's node-side veths by name (when its namespace outlives it; usually they go with it),
        on the side loop."""
        names = list(host_names)
        await self.side.run(lambda: self._detach(names))

    async def _detach(self, names: list[str]) -> None:
        net = await self._on_side()
        for name in names:
            await net.detach_task(name)

    async def cleanup(self) -> list[str]:
        """Remove everything shoal added to the node's namespace (devices; the nft table is MeshSync's)."""
        self.spec, self.routed, self.dsr = None, frozenset(), None
        return await self.net.cleanup()

    def _spec(self) -> NodeSpec:
        if self.spec is None:
            raise links.PlumbingError("the node's networks are not set up yet (ensure first)")
        return self.spec
