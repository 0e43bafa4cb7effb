"""What one node balances and answers, from plain views of the services and tasks it knows about.

The agent turns its store views (services with their VIPs and ports, tasks with their addresses and
state) into these plain records; two pure functions then decide the rest:

* ``mesh_for(node, ...)`` -> the ``Mesh`` this node loads into nftables. A VIP on network X balances
  over the serving tasks' addresses on X, on every TCP and UDP port (as Swarm's VIP does: a service
  needs no declared port to be reached through its VIP; each connection keeps its port). A published port (ingress mode) balances over every serving
  task in the cluster: a task on this node is reached at its node-bridge address (its replies leave
  through this node, so the client's address is kept), a task elsewhere (masqueraded, so replies come
  back here) at its node-bridge address too when its node's subnet is ``routed`` (a node on this
  node's link, see routes.py: no VXLAN on the way), else at its ingress-network address. Host mode:
  this node's tasks only. With direct server return (``dsr``: this node's uplink and the peers on it,
  see dsr.py), each published TCP port of ingress mode is also split between this node and those peers
  by their numbers of serving tasks (a task elsewhere keeps its share through the conntrack mesh).
* ``Directory`` -> the DNS lookup: a client (known by one of its addresses) sees a service only if
  they share a network; it gets the VIPs on the shared networks, or the task addresses there. A
  service's aliases on a network (``--network name=N,alias=A``) answer like its name, but only to
  clients on that network, and only with that network's VIP and addresses.

"Serving" is the agent's call (RUNNING and, with a healthcheck, healthy): the plan never second-guesses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from shoal.worker.network import dsr as dsrmod
from shoal.worker.network.dns import Records
from shoal.worker.network.nft import ANY, HOST, Endpoint, Frontend, Mesh

NODE = ""  # the key of a task's address on its node's bridge, in ``TaskNet.addresses``
INGRESS = "ingress"


@dataclass(frozen=True)
class Port:
    """A service port: ``target`` inside the task; ``published`` > 0 also publishes it."""

    target: int
    published: int = 0
    protocol: str = "tcp"
    mode: str = "ingress"


@dataclass(frozen=True)
class ServiceNet:
    """A service as networking sees it: its networks, its VIP on each (none with dnsrr), its ports, and
    its DNS aliases by network."""

    name: str
    networks: tuple[str, ...] = ()
    vips: dict[str, str] = field(default_factory=dict)
    ports: tuple[Port, ...] = ()
    dnsrr: bool = False
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskNet:
    """A task: its service, node, addresses by network (``NODE`` for its node bridge), and whether it serves."""

    service: str
    node: str
    addresses: dict[str, str] = field(default_factory=dict)
    serving: bool = True


def _vip_frontends(svc: ServiceNet, tasks: list[TaskNet], node: str) -> list[Frontend]:
    out = []
    for network, vip in sorted(svc.vips.items()):
        eps = tuple(Endpoint(t.addresses[network], 0, t.node == node) for t in tasks if network in t.addresses)
        out.append(Frontend(svc.name, 0, eps, ANY, vip=vip))
    return out


def _remote_address(t: TaskNet, routed: list[ipaddress.IPv4Network]) -> str | None:
    """Where the mesh reaches a task on another node: its bridge address when its node's subnet is routed
    here, else its ingress address (None: neither)."""
    bridge = t.addresses.get(NODE)
    if bridge is not None and routed and any(ipaddress.IPv4Address(bridge) in net for net in routed):
        return bridge
    return t.addresses.get(INGRESS)


def _published_frontends(svc: ServiceNet, tasks: list[TaskNet], node: str,
                         routed: list[ipaddress.IPv4Network]) -> list[Frontend]:
    out = []
    for port in (p for p in svc.ports if p.published):
        eps = []
        for t in tasks:
            if t.node == node and NODE in t.addresses:
                eps.append(Endpoint(t.addresses[NODE], port.target, True))
            elif t.node != node and port.mode != HOST and (address := _remote_address(t, routed)) is not None:
                eps.append(Endpoint(address, port.target, False))
        out.append(Frontend(svc.name, port.published, tuple(eps), port.protocol, mode=port.mode))
    return out


def _dsr(link: dsrmod.Link, services: list[ServiceNet], serving: dict[str, list[TaskNet]], node: str) -> dsrmod.Dsr:
    """The split of every published TCP port of ingress mode: one target per serving task with a bridge
    address (this node, the peer whose task subnet holds it, or another node)."""
    subnets = [(ipaddress.IPv4Network(s), peer) for peer, s in link.peers]

    def target(t: TaskNet) -> str:
        if t.node == node:
            return dsrmod.SELF
        address = ipaddress.IPv4Address(t.addresses[NODE])
        return next((peer for net, peer in subnets if address in net), dsrmod.STACK)

    ports = [(p.published, [target(t) for t in serving.get(svc.name, []) if NODE in t.addresses])
             for svc in services for p in svc.ports if p.published and p.protocol == "tcp" and p.mode != "host"]
    return dsrmod.Dsr(link, dsrmod.shares(link, ports))


def mesh_for(node: str, services: Iterable[ServiceNet], tasks: Iterable[TaskNet], local_subnets: Iterable[str],
             task_ports: tuple[int, ...] = (53,), routed: Iterable[str] = (), dsr: dsrmod.Link | None = None) -> Mesh:
    """The ``Mesh`` node ``node`` loads: every service's VIPs and published ports, serving tasks only;
    ``routed``: the other nodes' task subnets routed straight to them; ``dsr``: direct server return with
    the peers on this node's uplink (None: off)."""
    nets = [ipaddress.IPv4Network(r) for r in sorted(set(routed))]
    serving: dict[str, list[TaskNet]] = {}
    for t in tasks:
        if t.serving:
            serving.setdefault(t.service, []).append(t)
    frontends: list[Frontend] = []
    services = sorted(services, key=lambda s: s.name)
    for svc in services:
        mine = serving.get(svc.name, [])
        if not svc.dnsrr:
            frontends += _vip_frontends(svc, mine, node)
        frontends += _published_frontends(svc, mine, node, nets)
    return Mesh(tuple(frontends), tuple(sorted(set(local_subnets))), task_ports, tuple(str(n) for n in nets),
                dsr=None if dsr is None else _dsr(dsr, services, serving, node))


class Directory:
    """The DNS responder's lookup over a snapshot of services and tasks (rebuild it when they change)."""

    def __init__(self, services: Iterable[ServiceNet], tasks: Iterable[TaskNet]) -> None:
        self.services = {s.name.lower(): s for s in services}
        self.aliases: dict[str, dict[str, ServiceNet]] = {}  # alias -> {network: the service it names there}
        for s in self.services.values():
            for network, names in s.aliases.items():
                for alias in names:
                    self.aliases.setdefault(alias.lower(), {}).setdefault(network, s)
        self.tasks: dict[str, list[TaskNet]] = {}
        self.networks_of: dict[str, set[str]] = {}  # a task address -> the networks its task is on
        for t in tasks:
            if t.serving:
                self.tasks.setdefault(t.service.lower(), []).append(t)
            nets = {n for n in t.addresses if n not in (NODE, INGRESS)}
            for addr in t.addresses.values():
                self.networks_of.setdefault(addr, set()).update(nets)

    def __call__(self, client: str, service: str) -> Records | None:
        """Records of ``service`` (a name, or an alias on the client's networks) on the networks it shares
        with ``client``; None when it shares none."""
        mine = self.networks_of.get(client, set())
        svc = self.services.get(service)
        if svc is not None:
            shared = sorted(mine & set(svc.networks))
        else:
            named = self.aliases.get(service, {})
            shared = sorted(n for n in mine if n in named)
            svc = named[shared[0]] if shared else None
            shared = [n for n in shared if svc is not None and named[n] is svc]
        if svc is None or not shared:
            return None
        vips = tuple(svc.vips[n] for n in shared if n in svc.vips)
        addrs = tuple(t.addresses[n] for t in self.tasks.get(svc.name.lower(), []) for n in shared if n in t.addresses)
        return Records(vips=vips, tasks=addrs, dnsrr=svc.dnsrr)
