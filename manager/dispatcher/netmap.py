"""The network map each node gets on its session stream (see ``NetworkMap`` in dispatcher.proto). Pure.

``ClusterNet.build`` turns the cache's networking records into the shared part once per cache revision:
every network, every node's network facts, and one ``MapService`` per service with its tasks that are
meant to run and started (``in_map``: effective STARTING or RUNNING, addresses recorded). A RUNNING one
serves with its health; a STARTING one (a task with a health check stays STARTING until its first healthy
probe) goes with HEALTH_STARTING: it takes no traffic and is in no DNS answer, but its node knows its
addresses, so it can resolve the names of the services it shares a network with -- a health check that
reaches a dependency by name (``wget http://db/``) could never pass otherwise. ``node_map`` cuts out what one
node needs: ingress and the networks it is on (its allocator record says which), with the other
nodes on them as peers (ingress: also every node's task subnet and underlay, ``peer_subnets``: a node
routes the subnets of the nodes on its own link straight to them, see worker/network/routes.py); the
services on those networks plus every service publishing a port; a task's bridge address when the task
runs on that node, or when its service publishes a port (the routing mesh reaches it there through a
route of its node's subnet, without VXLAN). ``MapSet`` remembers what a node was sent and
turns the next map into an increment (per network, per service), or nothing when nothing changed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb


@dataclass
class ClusterNet:
    """The networking state every node's map is cut from."""

    networks: dict[str, pb.Network] = field(default_factory=dict)
    nodenets: dict[str, pb.NodeNetworkInfo] = field(default_factory=dict)
    services: dict[str, dpb.MapService] = field(default_factory=dict)
    on_network: dict[str, set[str]] = field(default_factory=dict)  # network id -> ids of services on it
    published: set[str] = field(default_factory=set)  # ids of services publishing a port
    _members: dict[str, tuple[list[str], Counter[str]]] | None = None  # see ``members``
    _subnets: list[dpb.PeerSubnet] | None = None  # see ``peer_subnets``

    @classmethod
    def build(
        cls,
        networks: dict[str, pb.Network],
        nodenets: dict[str, pb.NodeNetworkInfo],
        services: Iterable[pb.Service],
        endpoints: dict[str, pb.ServiceEndpoint],
        serving: Iterable[tuple[pb.Task, pb.TaskStatus, pb.TaskAddresses]],
    ) -> ClusterNet:
        """``serving``: the tasks in the map (``in_map``), each with its effective status and addresses."""
        cn = cls(networks, nodenets)
        for svc in services:
            ms = cn.services[svc.id] = dpb.MapService(
                id=svc.id, name=svc.spec.name, mode=svc.spec.endpoint_mode
            )
            ms.networks.extend(svc.spec.networks)
            rec = endpoints.get(svc.id)
            if rec is not None:
                ms.virtual_ips.extend(rec.endpoint.virtual_ips)
                ms.ports.extend(rec.endpoint.ports)
            else:
                ms.ports.extend(svc.spec.ports)
            for att in svc.spec.networks:
                cn.on_network.setdefault(att.target, set()).add(svc.id)
            for vip in ms.virtual_ips:
                cn.on_network.setdefault(vip.network_id, set()).add(svc.id)
            if svc.spec.ports:
                cn.published.add(svc.id)
        for task, status, addrs in serving:
            served = cn.services.get(task.service_id)
            if served is not None:
                served.tasks.add(
                    id=task.id,
                    node_id=task.node_id,
                    addresses=addrs.networks,
                    bridge_address=addrs.bridge_address,
                    health=status.health if serves(task, status) else pb.HEALTH_STARTING,
                    slot=task.slot,
                )
        for ms in cn.services.values():
            ms.tasks.sort(key=lambda t: t.id)
        return cn

    def members(self) -> dict[str, tuple[list[str], Counter[str]]]:
        """Per network: the sorted distinct underlay addresses of the nodes on it, and how many nodes have each.

        Built once per ``ClusterNet`` (one pass over the nodes): each node's peers are then that list less its
        own address, not a scan of every node per node (1,000 nodes waking for a join cost ~1,000,000 steps)."""
        if self._members is None:
            counts: dict[str, Counter[str]] = {}
            for info in self.nodenets.values():
                if info.underlay:
                    for net_id in {o.network_id for o in info.overlays}:
                        counts.setdefault(net_id, Counter())[info.underlay] += 1
            self._members = {net_id: (sorted(c), c) for net_id, c in counts.items()}
        return self._members

    def peer_subnets(self) -> list[dpb.PeerSubnet]:
        """Every node's task subnet with its underlay address, by subnet (built once; each node skips its own)."""
        if self._subnets is None:
            pairs = {(i.subnet, i.underlay) for i in self.nodenets.values() if i.subnet and i.underlay}
            self._subnets = [dpb.PeerSubnet(subnet=s, underlay=u) for s, u in sorted(pairs)]
        return self._subnets

    def peers(self, net_id: str, node_id: str) -> list[str]:
        """The underlay addresses of the other nodes on ``net_id`` (another node may share ``node_id``'s)."""
        underlays, counts = self.members().get(net_id, ([], Counter()))
        info = self.nodenets.get(node_id)
        own = info.underlay if info is not None and any(o.network_id == net_id for o in info.overlays) else ""
        if own and counts[own] == 1:
            return [u for u in underlays if u != own]
        return list(underlays)

    def node_networks(self, node_id: str) -> dict[str, dpb.MapNetwork]:
        """The networks ``node_id`` is on, with its address and its peers on each."""
        info = self.nodenets.get(node_id)
        out: dict[str, dpb.MapNetwork] = {}
        for att in info.overlays if info is not None else ():
            net = self.networks.get(att.network_id)
            if net is None:
                continue
            peers = self.peers(net.id, node_id)
            out[net.id] = dpb.MapNetwork(
                id=net.id,
                name=net.spec.name,
                vxlan_id=net.vxlan_id,
                subnet=net.subnet,
                vip_block=net.vip_block,
                node_address=att.address,
                peers=peers,
                ingress=net.spec.ingress,
                peer_subnets=self.peer_subnets() if net.spec.ingress else (),
            )
        return out

    def node_map(self, node_id: str) -> dpb.NetworkMap:
        """The whole map for ``node_id`` (``full`` set)."""
        nets = self.node_networks(node_id)
        m = dpb.NetworkMap(full=True)
        info = self.nodenets.get(node_id)
        if info is not None:
            m.node.CopyFrom(info)
        m.networks.extend(nets[k] for k in sorted(nets))
        wanted = set(self.published)
        for nid in nets:
            wanted |= self.on_network.get(nid, set())
        for sid in sorted(wanted):
            ms = m.services.add()
            ms.CopyFrom(self.services[sid])
            if sid in self.published:
                continue  # the mesh may reach its tasks at their bridge address (see the module docstring)
            for t in ms.tasks:
                if t.node_id != node_id:
                    t.bridge_address = ""
        return m


def serves(task: pb.Task, status: pb.TaskStatus) -> bool:
    """Whether a task may take traffic: running and meant to run (health is the agent's call)."""
    return task.desired_state == pb.RUNNING and status.state == pb.RUNNING


def in_map(task: pb.Task, status: pb.TaskStatus) -> bool:
    """Whether a task belongs in the map: meant to run and started (STARTING or RUNNING). A task being
    stopped leaves it at once, so it gets no new connection while it drains."""
    return task.desired_state == pb.RUNNING and status.state in (pb.STARTING, pb.RUNNING)


@dataclass
class MapSet:
    """What was last sent to one node, as serialized parts, to send only what changed."""

    node: bytes = b""
    networks: dict[str, bytes] = field(default_factory=dict)
    services: dict[str, bytes] = field(default_factory=dict)

    def diff(self, current: dpb.NetworkMap, full: bool) -> dpb.NetworkMap | None:
        """``current`` (a full map) as the message to send: itself when ``full``, else the increment (None: nothing)."""
        node = current.node.SerializeToString(deterministic=True) if current.HasField("node") else b""
        nets = {n.id: n.SerializeToString(deterministic=True) for n in current.networks}
        svcs = {s.id: s.SerializeToString(deterministic=True) for s in current.services}
        if full:
            msg = current
        else:
            msg = dpb.NetworkMap(full=False)
            if node != self.node:
                msg.node.CopyFrom(current.node)
            msg.networks.extend(n for n in current.networks if self.networks.get(n.id) != nets[n.id])
            msg.removed_networks.extend(sorted(set(self.networks) - set(nets)))
            msg.services.extend(s for s in current.services if self.services.get(s.id) != svcs[s.id])
            msg.removed_services.extend(sorted(set(self.services) - set(svcs)))
        self.node, self.networks, self.services = node, nets, svcs
        if not full and msg == dpb.NetworkMap(full=False):
            return None
        return msg
