"""The routing mesh as nftables text: service VIPs and published ports balanced over task endpoints.

A pure function of plain data (``render``) writes the whole of shoal's own table, ``table ip shoal``,
in the shape of kube-proxy's nftables mode: one verdict-map lookup on ``ip daddr . meta l4proto . th
dport`` (VIPs) or, for addresses of this node, ``meta l4proto . th dport`` (published ports) jumps to a
chain per frontend (a VIP that answers on every port, as Swarm's does, is looked up on ``ip daddr``
alone, for TCP and UDP, and its endpoint chains keep the port), which picks an endpoint chain with ``numgen random mod N vmap``; each endpoint chain
does ``dnat to ip:port``. Frontends without endpoints are rejected at once (a refused connection, not a
hang).

Source NAT only where the reply would not come back through this node: an endpoint on another node is
always masqueraded; a local endpoint keeps the client's address (which Swarm loses, moby#25526) unless
the client sits on one of this node's bridges (``local_subnets``), whose reply would bypass us on the
bridge (hairpin). Host-mode published ports only balance over this node's own tasks and are absent on
a node that runs none. Tasks may reach the node itself only on ``task_ports`` (DNS), never etcd, gRPC
or anything else listening there, and tasks of another network on this node only through the mesh
(traffic routed between two ``local_subnets`` is dropped unless it was DNATed or is a reply), as the
tasks of other nodes whose subnets this node routes to them (``routed_subnets``, see routes.py). The text
replaces the table atomically (see ``nftapply``).

With direct server return (``Mesh.dsr``, see dsr.py) the same transaction carries this node's netdev
table, and ``table ip shoal`` takes in the connections a peer forwarded here: each published TCP port
maps (``dsr-ports``) to this node's own tasks, without masquerade (the reply leaves from here, straight
to the client), or, when none serves here, to the port's own chain; the share of the tasks no peer on
the link serves (``dsr-stack``) to those tasks.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
from dataclasses import dataclass, field

from shoal.worker.network.dsr import Dsr, netdev_table
from shoal.worker.network.nfttable import EP_MARK, MASQ_MARK, TABLE, Ruleset, full_text, removal, replace_text

__all__ = [
    "ANY", "HOST", "INGRESS", "MASQ_MARK", "PROTOCOLS", "TABLE", "Endpoint", "Frontend", "Mesh", "NftError", "Ruleset",
    "build", "chain_name", "removal", "render", "served_by", "transaction",
]

PROTOCOLS = ("tcp", "udp")
ANY = "any"  # the protocol of a VIP frontend that answers on every TCP and UDP port (``port`` 0)
INGRESS, HOST = "ingress", "host"


@dataclass(frozen=True)
class Endpoint:
    """A task that serves a frontend: its address and target port; ``local`` when it runs on this node."""

    ip: str
    port: int
    local: bool = False


@dataclass(frozen=True)
class Frontend:
    """One balanced address: a service VIP (``vip`` set) or a published port (``vip`` None, with ``mode``).

    A VIP frontend with protocol ``ANY`` and port 0 answers on every TCP and UDP port: its endpoints
    have port 0 and connections keep their destination port."""

    service: str
    port: int
    endpoints: tuple[Endpoint, ...] = ()
    protocol: str = "tcp"
    vip: str | None = None
    mode: str = INGRESS


@dataclass(frozen=True)
class Mesh:
    """Everything this node balances, plus the subnets of its own bridges (clients that need SNAT)."""

    frontends: tuple[Frontend, ...] = ()
    local_subnets: tuple[str, ...] = field(default_factory=tuple)
    task_ports: tuple[int, ...] = (53,)  # the only ports of this node a task may reach (DNS), TCP and UDP
    routed_subnets: tuple[str, ...] = ()  # other nodes' task subnets routed to them (reached only through the mesh)
    dsr: Dsr | None = None  # direct server return with the peers on this node's link (dsr.py); None: off


class NftError(ValueError):
    """Data that cannot become a ruleset (bad address, port or protocol); the message names it."""


def _check(fe: Frontend) -> None:
    if fe.mode not in (INGRESS, HOST):
        raise NftError(f"service {fe.service}: publish mode {fe.mode!r} is not ingress or host")
    if fe.protocol == ANY:
        if not fe.vip or fe.port or any(e.port for e in fe.endpoints):
            raise NftError(f"service {fe.service}: every port ({ANY!r}) is for a VIP, with port 0 everywhere")
    elif fe.protocol not in PROTOCOLS:
        raise NftError(f"service {fe.service}: protocol {fe.protocol!r} is not one of {', '.join(PROTOCOLS)}")
    else:
        for port in [fe.port, *(e.port for e in fe.endpoints)]:
            if not 1 <= port <= 65535:
                raise NftError(f"service {fe.service}: port {port} is out of range (1-65535)")
    for ip in [*([fe.vip] if fe.vip else []), *(e.ip for e in fe.endpoints)]:
        try:
            _ip_key(ip)
        except (OSError, TypeError):
            raise NftError(f"service {fe.service}: {ip!r} is not an IPv4 address") from None


def _ip_key(ip: str) -> bytes:
    """The address as 4 bytes (strict dotted quad; sorts numerically). ipaddress is ~10x slower here."""
    return socket.inet_pton(socket.AF_INET, ip)


def chain_name(fe: Frontend) -> str:
    """A readable, unique chain name for a frontend (service name cleaned, plus a short hash)."""
    clean = re.sub(r"[^A-Za-z0-9_.-]", "_", fe.service)[:40]
    key = f"{fe.service}|{fe.vip}|{fe.protocol}|{fe.port}|{fe.mode}".encode()
    kind = "vip" if fe.vip else "pub"
    return f"{kind}-{clean}-{fe.protocol}-{fe.port}-{hashlib.sha256(key).hexdigest()[:6]}"


def served_by(fe: Frontend) -> tuple[Endpoint, ...]:
    """The endpoints this node balances a frontend over (host mode: this node's own), in a stable order."""
    eps = [e for e in fe.endpoints if e.local or fe.mode != HOST or fe.vip]
    return tuple(sorted(set(eps), key=lambda e: (_ip_key(e.ip), e.port)))


def _endpoint_chain(fe: Frontend, ep: Endpoint) -> tuple[str, tuple[str, ...]]:
    """An endpoint's chain, named by what it does, so an unchanged endpoint keeps its chain."""
    digest = hashlib.sha256(f"{ep.ip}|{ep.port}|{ep.local}".encode()).hexdigest()[:8]
    masq = "ip saddr @local-sources jump mark-for-masquerade" if ep.local else "jump mark-for-masquerade"
    dnat = f"dnat to {ep.ip}" if fe.protocol == ANY else f"meta l4proto {fe.protocol} dnat to {ep.ip}:{ep.port}"
    return f"{chain_name(fe)}{EP_MARK}{digest}", (masq, dnat)


def _frontend_chains(fe: Frontend, eps: tuple[Endpoint, ...]) -> dict[str, tuple[str, ...]]:
    ep_chains = dict(_endpoint_chain(fe, ep) for ep in eps)
    names = list(ep_chains)
    if len(names) == 1:
        pick = f"goto {names[0]}"
    else:
        choices = ", ".join(f"{i} : goto {n}" for i, n in enumerate(names))
        pick = f"numgen random mod {len(names)} vmap {{ {choices} }}"
    return {chain_name(fe): (pick,), **ep_chains}


def _balance(fe: Frontend, chosen: list[Endpoint], suffix: str) -> tuple[str, dict[str, tuple[str, ...]]]:
    """A chain of ``fe``'s balancing over ``chosen`` only, through their endpoint chains: (verdict, chains)."""
    names = [_endpoint_chain(fe, e)[0] for e in chosen]
    pick = f"goto {names[0]}" if len(names) == 1 else \
        f"numgen random mod {len(names)} vmap {{ {', '.join(f'{i} : goto {n}' for i, n in enumerate(names))} }}"
    return f"goto {chain_name(fe)}-{suffix}", {f"{chain_name(fe)}-{suffix}": (pick,)}


def _forwarded(rs: Ruleset, fe: Frontend, eps: tuple[Endpoint, ...], peers: list[ipaddress.IPv4Network]) -> None:
    """Where ``fe``'s connections that direct server return brought here go (dsr.py).

    ``dsr-ports`` (forwarded by a peer, or picked for this node's tasks by its netdev table): this node's
    own tasks, never masqueraded (the reply leaves from here, straight to the client). ``dsr-stack``
    (picked for the tasks no peer on the link serves): those tasks, masqueraded as the mesh does. With
    none of them, the port's chain over every task (a peer's weights a moment old); with no task at all,
    refused."""
    fallback = f"goto {chain_name(fe)}" if eps else "goto reject-chain"
    local = [e for e in eps if e.local]
    stack = [e for e in eps if not e.local and not any(ipaddress.IPv4Address(e.ip) in n for n in peers)]
    for kind, chosen, suffix in (("dsr-ports", local, "dsr"), ("dsr-stack", stack, "stack")):
        verdict, chains = _balance(fe, chosen, suffix) if chosen else (fallback, {})
        rs.maps[kind][str(fe.port)] = verdict
        rs.chains.update(chains)


def _key(fe: Frontend) -> str:
    if fe.protocol == ANY:
        return f"{fe.vip}"
    return f"{fe.vip} . {fe.protocol} . {fe.port}" if fe.vip else f"{fe.protocol} . {fe.port}"


def _kind(fe: Frontend) -> str:
    return "vips-any" if fe.protocol == ANY else "vips" if fe.vip else "published"


def build(mesh: Mesh) -> Ruleset:
    """The table's contents for ``mesh``; deterministic (same data, same ruleset)."""
    for port in mesh.task_ports:
        if not 1 <= port <= 65535:
            raise NftError(f"task port {port} is out of range (1-65535)")
    seen: dict[str, Frontend] = {}
    peers = [ipaddress.IPv4Network(n, strict=False) for _, n in mesh.dsr.link.peers] if mesh.dsr else []
    rs = Ruleset(tuple(sorted({str(ipaddress.IPv4Network(s, strict=False)) for s in mesh.local_subnets})),
                 task_ports=tuple(sorted(set(mesh.task_ports))),
                 routed=tuple(sorted({str(ipaddress.IPv4Network(s, strict=False)) for s in mesh.routed_subnets})),
                 **_dsr_fields(mesh.dsr))
    for fe in sorted(mesh.frontends, key=lambda f: (f.vip or "", f.protocol, f.port, f.service)):
        _check(fe)
        eps = served_by(fe)
        if fe.mode == HOST and not fe.vip and not eps:
            continue  # host mode: nothing to bind on a node without a task
        key = _key(fe)
        if key in seen:
            raise NftError(f"{'VIP' if fe.vip else 'published port'} {key.replace(' . ', ' ')} is claimed by "
                           f"both {seen[key].service} and {fe.service}")
        seen[key] = fe
        kind = _kind(fe)
        if eps:
            rs.maps[kind][key] = f"goto {chain_name(fe)}"
            rs.chains.update(_frontend_chains(fe, eps))
        else:
            rs.maps[f"{kind}-empty"][key] = "goto reject-chain"
        if mesh.dsr is not None and not fe.vip and fe.protocol == "tcp" and fe.mode == INGRESS:
            _forwarded(rs, fe, eps, peers)
    return rs


def _dsr_fields(d: Dsr | None) -> dict[str, object]:
    if d is None:
        return {}
    for address in [d.link.address, *(p for p, _ in d.link.peers)]:
        try:
            _ip_key(address)
        except (OSError, TypeError):
            raise NftError(f"direct server return: {address!r} is not an IPv4 address") from None
    if not re.fullmatch(r"[A-Za-z0-9_.@:-]{1,15}", d.link.uplink):
        raise NftError(f"direct server return: {d.link.uplink!r} is not a device name")
    return {"uplink": d.link.uplink, "peers": tuple(sorted({p for p, _ in d.link.peers}, key=_ip_key)),
            "netdev": netdev_table(d)}


def render(mesh: Mesh) -> str:
    """The full ``table ip shoal`` for ``mesh``."""
    return full_text(build(mesh))


def transaction(mesh: Mesh) -> str:
    """The one ``nft -f`` file that replaces the table's whole contents atomically."""
    return replace_text(build(mesh))
