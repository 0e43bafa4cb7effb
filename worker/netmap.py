"""The node's network map, as the dispatcher streams it, and what the node's networking derives from it.

The manager sends a ``NetworkMap`` on the session stream: whole on a session's first message, then
increments (networks and services replaced or removed by id, the node's own info replaced). ``NetMap``
merges them into plain state, and turns that state into the records the worker's network blocks take:

* ``node_spec()`` -> the ``NodeSpec`` ``NodeNetwork.ensure`` follows (bridge gateway, underlay, one
  overlay per network with its own VXLAN peers, the other nodes' task subnets it may route to them);
* ``services()``/``tasks()`` -> the ``ServiceNet``/``TaskNet`` views ``mesh_for`` and ``Directory`` take.
  A task serves (is an endpoint) when its health is none or healthy: the manager already sends only
  tasks that are RUNNING and meant to run, so a task being stopped is gone from the map at once.

Pure and synchronous: no I/O, tested on plain messages.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field

from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.worker.network.plan import INGRESS, NODE, Port, ServiceNet, TaskNet
from shoal.worker.network.topology import NodeSpec, OverlaySpec

SERVING_HEALTH = (pb.HEALTH_NONE, pb.HEALTH_HEALTHY)
PROTOCOLS = {pb.PortConfig.TCP: "tcp", pb.PortConfig.UDP: "udp"}
MODES = {pb.PortConfig.INGRESS: "ingress", pb.PortConfig.HOST: "host"}


@functools.lru_cache(maxsize=1 << 16)
def ip_of(address: str) -> str:
    """``a.b.c.d`` of ``a.b.c.d/prefix`` (or of a bare address). Cached: every map message makes the mesh
    and the directory again from every task's addresses (``task_nets``), and parsing them was ~6% of an
    agent's event loop during a rolling update of 60 replicas."""
    return str(ipaddress.IPv4Interface(address).ip)


@dataclass
class NetMap:
    """The merged map: the node's own info, the networks and services it was sent (by id)."""

    node: pb.NodeNetworkInfo | None = None
    networks: dict[str, dpb.MapNetwork] = field(default_factory=dict)
    services: dict[str, dpb.MapService] = field(default_factory=dict)
    version: int = 0  # bumped by every message that was applied
    revision: int = 0  # the manager's store revision the newest message was cut at (acknowledged once loaded)

    def apply(self, msg: dpb.NetworkMap) -> None:
        """Merge one message (a full one replaces everything held before)."""
        if msg.full:
            self.node, self.networks, self.services = None, {}, {}
        if msg.HasField("node"):
            self.node = msg.node
        for nid in msg.removed_networks:
            self.networks.pop(nid, None)
        for n in msg.networks:
            self.networks[n.id] = n
        for sid in msg.removed_services:
            self.services.pop(sid, None)
        for s in msg.services:
            self.services[s.id] = s
        self.version += 1
        self.revision = msg.revision if msg.full else max(self.revision, msg.revision)

    def node_spec(self, mtu: int = 1500, uplink: str | None = None) -> NodeSpec | None:
        """The node's plumbing (None until the node's info came): bridge, underlay and one overlay per network."""
        if self.node is None or not self.node.gateway:
            return None
        overlays = tuple(sorted(
            (OverlaySpec(n.name, n.vxlan_id, n.subnet, n.node_address, n.vip_block, peers=tuple(sorted(n.peers)))
             for n in self.networks.values() if n.node_address),
            key=lambda o: o.name))
        peers = sorted({p for n in self.networks.values() for p in n.peers})
        own = (self.node.subnet, self.node.underlay)
        routes = sorted({(p.subnet, p.underlay) for n in self.networks.values() if n.ingress for p in n.peer_subnets
                         if p.subnet != own[0] and p.underlay != own[1]})
        return NodeSpec(self.node.gateway, self.node.underlay, tuple(peers), overlays, uplink=uplink, mtu=mtu,
                        peer_subnets=tuple(routes))

    def network_names(self) -> set[str]:
        """The networks this node is on (with an address of its own)."""
        return {n.name for n in self.networks.values() if n.node_address}

    def _names(self) -> dict[str, str]:
        return {n.id: n.name for n in self.networks.values()}

    def service_nets(self) -> list[ServiceNet]:
        """Every service as the mesh and the DNS see it: networks by name, VIPs by network, ports."""
        names = self._names()
        out = []
        for s in self.services.values():
            nets = {names.get(a.target, a.target) for a in s.networks}
            vips = {v.network or names.get(v.network_id, v.network_id): ip_of(v.addr)
                    for v in s.virtual_ips if v.addr}
            if any(p.published_port and p.publish_mode == pb.PortConfig.INGRESS for p in s.ports):
                nets.add(INGRESS)
            ports = tuple(Port(p.target_port, p.published_port, PROTOCOLS.get(p.protocol, "tcp"),
                               MODES.get(p.publish_mode, "ingress"))
                          for p in s.ports if p.protocol in PROTOCOLS and p.target_port)
            aliases = {names.get(a.target, a.target): tuple(a.aliases) for a in s.networks if a.aliases}
            out.append(ServiceNet(s.name, tuple(sorted(nets)), vips, ports, dnsrr=s.mode == pb.DNSRR, aliases=aliases))
        return sorted(out, key=lambda s: s.name)

    def task_nets(self) -> list[TaskNet]:
        """Every task the map names: its addresses by network name (``NODE``: its node bridge), serving or not."""
        names = self._names()
        out = []
        for s in self.services.values():
            for t in s.tasks:
                addrs = {a.network or names.get(a.network_id, a.network_id): ip_of(a.address)
                         for a in t.addresses if a.address}
                if t.bridge_address:
                    addrs[NODE] = ip_of(t.bridge_address)
                out.append(TaskNet(s.name, t.node_id, addrs, serving=t.health in SERVING_HEALTH))
        return out


    def serving_ids(self) -> frozenset[str]:
        """The ids of the tasks the mesh balances over (serving), for the trace."""
        return frozenset(t.id for s in self.services.values() for t in s.tasks if t.health in SERVING_HEALTH)


def task_networks(task: pb.Task) -> dict[str, str]:
    """A task's addresses per network name (ingress included), as ``NodeNetwork.attach`` takes them."""
    return {a.network: a.address for a in task.networks if a.address}
