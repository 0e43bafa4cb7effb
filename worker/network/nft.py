"""The routing mesh as nftables text: service VIPs and published ports balanced over task endpoints.

A pure function of plain data (``render``) writes the whole of shoal's own table, ``table ip shoal``,
in the shape of kube-proxy's nftables mode: one verdict-map lookup on ``ip daddr . meta l4proto . th
dport`` (VIPs) or, for addresses of this node, ``meta l4proto . th dport`` (published ports) jumps to a
chain per frontend, which picks an endpoint chain with ``numgen random mod N vmap``; each endpoint chain
does ``dnat to ip:port``. Frontends without endpoints are rejected at once (a refused connection, not a
hang).

Source NAT only where the reply would not come back through this node: an endpoint on another node is
always masqueraded; a local endpoint keeps the client's address (which Swarm loses, moby#25526) unless
the client sits on one of this node's bridges (``local_subnets``), whose reply would bypass us on the
bridge (hairpin). Host-mode published ports only balance over this node's own tasks and are absent on
a node that runs none. Tasks may reach the node itself only on ``task_ports`` (DNS), never etcd, gRPC
or anything else listening there. The text replaces the table atomically (see ``nftapply``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass, field

TABLE = "shoal"
MASQ_MARK = 0x200000  # one bit of the packet mark, set by endpoint chains, read by postrouting
PROTOCOLS = ("tcp", "udp")
INGRESS, HOST = "ingress", "host"


@dataclass(frozen=True)
class Endpoint:
    """A task that serves a frontend: its address and target port; ``local`` when it runs on this node."""

    ip: str
    port: int
    local: bool = False


@dataclass(frozen=True)
class Frontend:
    """One balanced address: a service VIP (``vip`` set) or a published port (``vip`` None, with ``mode``)."""

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


class NftError(ValueError):
    """Data that cannot become a ruleset (bad address, port or protocol); the message names it."""


def _check(fe: Frontend) -> None:
    if fe.protocol not in PROTOCOLS:
        raise NftError(f"service {fe.service}: protocol {fe.protocol!r} is not one of {', '.join(PROTOCOLS)}")
    if fe.mode not in (INGRESS, HOST):
        raise NftError(f"service {fe.service}: publish mode {fe.mode!r} is not ingress or host")
    for port in [fe.port, *(e.port for e in fe.endpoints)]:
        if not 1 <= port <= 65535:
            raise NftError(f"service {fe.service}: port {port} is out of range (1-65535)")
    for ip in [*([fe.vip] if fe.vip else []), *(e.ip for e in fe.endpoints)]:
        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            raise NftError(f"service {fe.service}: {ip!r} is not an IPv4 address") from None


def chain_name(fe: Frontend) -> str:
    """A readable, unique chain name for a frontend (service name cleaned, plus a short hash)."""
    clean = re.sub(r"[^A-Za-z0-9_.-]", "_", fe.service)[:40]
    key = f"{fe.service}|{fe.vip}|{fe.protocol}|{fe.port}|{fe.mode}".encode()
    kind = "vip" if fe.vip else "pub"
    return f"{kind}-{clean}-{fe.protocol}-{fe.port}-{hashlib.sha256(key).hexdigest()[:6]}"


def served_by(fe: Frontend) -> tuple[Endpoint, ...]:
    """The endpoints this node balances a frontend over (host mode: this node's own), in a stable order."""
    eps = [e for e in fe.endpoints if e.local or fe.mode != HOST or fe.vip]
    return tuple(sorted(set(eps), key=lambda e: (ipaddress.IPv4Address(e.ip), e.port)))


def _endpoint_chain(name: str, fe: Frontend, ep: Endpoint) -> list[str]:
    rules = ["ip saddr @local-sources jump mark-for-masquerade" if ep.local else "jump mark-for-masquerade"]
    rules.append(f"meta l4proto {fe.protocol} dnat to {ep.ip}:{ep.port}")
    return _chain(name, rules)


def _frontend_chains(fe: Frontend, eps: tuple[Endpoint, ...]) -> list[str]:
    name = chain_name(fe)
    ep_names = [f"{name}-e{i}" for i in range(len(eps))]
    if len(eps) == 1:
        pick = f"goto {ep_names[0]}"
    else:
        choices = ", ".join(f"{i} : goto {n}" for i, n in enumerate(ep_names))
        pick = f"numgen random mod {len(eps)} vmap {{ {choices} }}"
    out = _chain(name, [pick])
    for ep_name, ep in zip(ep_names, eps, strict=True):
        out += _endpoint_chain(ep_name, fe, ep)
    return out


def _chain(name: str, rules: list[str], hook: str = "") -> list[str]:
    body = [f"\t\t{hook}"] if hook else []
    return [f"\tchain {name} {{", *body, *(f"\t\t{r}" for r in rules), "\t}"]


def _map(name: str, key: str, elements: list[str]) -> list[str]:
    out = [f"\tmap {name} {{", f"\t\ttype {key} : verdict"]
    if elements:
        out.append("\t\telements = { " + ", ".join(elements) + " }")
    return [*out, "\t}"]


def _key(fe: Frontend) -> str:
    return f"{fe.vip} . {fe.protocol} . {fe.port}" if fe.vip else f"{fe.protocol} . {fe.port}"


def _guard_chains(ports: tuple[int, ...]) -> list[str]:
    """Tasks (sources in ``local-sources``) reach this node only on ``ports``, plus ping and replies."""
    rules = ["ct state established,related accept", "meta l4proto icmp accept"]
    if ports:
        rules.append(f"meta l4proto {{ tcp, udp }} th dport {{ {', '.join(str(p) for p in sorted(set(ports)))} }} accept")
    out = _chain("task-input", [*rules, "drop"])
    return out + _chain("filter-input", ["ip saddr @local-sources jump task-input"],
                        "type filter hook input priority 0; policy accept;")


def _base_chains() -> list[str]:
    lookups = [
        "ip daddr . meta l4proto . th dport vmap @vips",
        "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @published",
    ]
    empty = [
        "ip daddr . meta l4proto . th dport vmap @vips-empty",
        "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @published-empty",
    ]
    out = _chain("services", lookups) + _chain("no-endpoints", empty) + _chain("reject-chain", ["meta l4proto tcp reject with tcp reset", "reject"])
    out += _chain("mark-for-masquerade", [f"meta mark set meta mark | {MASQ_MARK:#x}"])
    for hook, prio in (("prerouting", -100), ("output", -100)):
        out += _chain(f"nat-{hook}", ["jump services"], f"type nat hook {hook} priority {prio}; policy accept;")
    masq = f"meta mark & {MASQ_MARK:#x} == {MASQ_MARK:#x} masquerade"
    out += _chain("nat-postrouting", [masq], "type nat hook postrouting priority 100; policy accept;")
    for hook in ("prerouting", "output"):  # before routing: a VIP may have no route on this node
        out += _chain(f"filter-{hook}", ["jump no-endpoints"], f"type filter hook {hook} priority -110; policy accept;")
    return out


def render(mesh: Mesh) -> str:
    """The full ``table ip shoal`` for ``mesh``; deterministic (same data, same text)."""
    seen: dict[str, Frontend] = {}
    vips, published, vips_empty, published_empty, chains = [], [], [], [], []
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
        if eps:
            (vips if fe.vip else published).append(f"{key} : goto {chain_name(fe)}")
            chains += _frontend_chains(fe, eps)
        else:
            (vips_empty if fe.vip else published_empty).append(f"{key} : goto reject-chain")
    sources = [str(ipaddress.IPv4Network(s, strict=False)) for s in mesh.local_subnets]
    lines = [f"table ip {TABLE} {{", "\tset local-sources {", "\t\ttype ipv4_addr; flags interval; auto-merge;"]
    if sources:
        lines.append("\t\telements = { " + ", ".join(sorted(set(sources))) + " }")
    lines.append("\t}")
    lines += _map("vips", "ipv4_addr . inet_proto . inet_service", vips)
    lines += _map("published", "inet_proto . inet_service", published)
    lines += _map("vips-empty", "ipv4_addr . inet_proto . inet_service", vips_empty)
    lines += _map("published-empty", "inet_proto . inet_service", published_empty)
    for port in mesh.task_ports:
        if not 1 <= port <= 65535:
            raise NftError(f"task port {port} is out of range (1-65535)")
    return "\n".join([*lines, *_base_chains(), *_guard_chains(mesh.task_ports), *chains, "}", ""])


def transaction(mesh: Mesh) -> str:
    """The one ``nft -f`` file that replaces the table's whole contents atomically."""
    return f"add table ip {TABLE}\ndelete table ip {TABLE}\n{render(mesh)}"


def removal() -> str:
    """The ``nft -f`` file that removes shoal's table (and nothing else); harmless when it is absent."""
    return f"add table ip {TABLE}\ndelete table ip {TABLE}\n"
