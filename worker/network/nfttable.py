"""shoal's nftables table as data (``Ruleset``), and the two ways to load it: whole, or as a delta.

``nft.build`` turns a mesh into a ``Ruleset``: the variable parts of the table (the set of local
sources, the six verdict maps, the per-frontend and per-endpoint chains, the task ports). The fixed
skeleton (hooks, dispatch, reject, masquerade, task guard) is written here.

What every packet meets, not what each connection meets once, is what the routing mesh costs on a
busy path (bench/mesh.py --lab: the remote mesh path crosses two nodes' tables, the VXLAN's outer
packets included), so the table keeps those chains few and short:

* the no-endpoints check sits in the nat chains, which the kernel runs for a connection's first packet
  only, not in filter chains at priority -110 that every packet crossed (two chains fewer per packet
  at each node it passes);
* VXLAN: the UDP packets that carry the overlays between nodes are not connection-tracked (``notrack``
  at raw priority, as VXLAN dataplanes do): nothing NATs or filters them by state;
* what an overlay bridge (``shob*``) forwards between a task and the VXLAN, not addressed to this node,
  is not tracked either: it is one network's layer-2 traffic, which this node neither NATs nor filters,
  yet br_netfilter hands every bridged packet to the ip hooks (a conntrack lookup each). The mesh's NAT
  happens on the node that received the connection, where its packets are routed and stay tracked; a
  task's traffic to this node itself is addressed to it and meets the task guards as before.

``full_text`` is the whole table; ``delta`` is the smaller transaction that turns the loaded ruleset
``old`` into ``new``: new chains first (endpoint chains before the frontend chains that jump to them),
then rewritten chains, then map and set elements, and last the chains nothing refers to any more. Both
are applied as one ``nft -f`` transaction, so either way a packet sees the old rules or the new ones.
At a thousand services a delta is what keeps a single endpoint change well under a second.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from shoal.worker.network import dsr
from shoal.worker.network.dsr import LOCAL_MARK, STACK_MARK, NetdevTable

TABLE = "shoal"
MASQ_MARK = 0x200000  # one bit of the packet mark, set by endpoint chains, read by postrouting
VXLAN_PORT = 4789  # the overlays' UDP port (IANA's VXLAN port, as Swarm's)
EP_MARK = "-ep-"  # endpoint chain names contain this; frontend chain names do not
OVERLAY_BRIDGES = "shob"  # the name prefix of the overlays' node-side bridges (topology.bridge_of)
MAP_TYPES = {
    "vips": "ipv4_addr . inet_proto . inet_service",
    "published": "inet_proto . inet_service",
    "vips-empty": "ipv4_addr . inet_proto . inet_service",
    "published-empty": "inet_proto . inet_service",
    "vips-any": "ipv4_addr",
    "vips-any-empty": "ipv4_addr",
    "dsr-ports": "inet_service",  # a published TCP port -> its chain for connections another node forwarded (dsr.py)
    "dsr-stack": "inet_service",  # a published TCP port -> its tasks no peer on the link serves (dsr.py)
}


@dataclass(frozen=True)
class Ruleset:
    """The variable contents of ``table ip shoal``."""

    sources: tuple[str, ...] = ()
    maps: dict[str, dict[str, str]] = field(default_factory=lambda: {m: {} for m in MAP_TYPES})
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    task_ports: tuple[int, ...] = (53,)
    routed: tuple[str, ...] = ()  # other nodes' task subnets this node routes to them (see routes.py)
    uplink: str = ""  # with direct server return (dsr.py): the device the peers forward connections in on
    peers: tuple[str, ...] = ()  # the addresses of those peers
    netdev: NetdevTable | None = None  # this node's own netdev table (dsr.py), loaded in the same transaction


def _chain(name: str, rules: list[str] | tuple[str, ...], hook: str = "") -> list[str]:
    body = [f"\t\t{hook}"] if hook else []
    return [f"\tchain {name} {{", *body, *(f"\t\t{r}" for r in rules), "\t}"]


def _guard_chains(ports: tuple[int, ...], uplink: str = "") -> list[str]:
    """Tasks (sources in ``local-sources``) reach this node only on ``ports``, plus ping and replies,
    and reach tasks of other networks on this node only through the mesh."""
    rules = ["ct state established,related accept", "meta l4proto icmp accept"]
    if ports:
        listed = ", ".join(str(p) for p in sorted(set(ports)))
        rules.append(f"meta l4proto {{ tcp, udp }} th dport {{ {listed} }} accept")
    out = _chain("task-input", [*rules, "drop"])
    # established traffic first: one conntrack test per packet instead of a set lookup (same verdicts)
    out += _chain("filter-input", ["ct state established,related accept", "ip saddr @local-sources jump task-input"],
                  "type filter hook input priority 0; policy accept;")
    # a task reaches another network's tasks only through the mesh (dnat), never routed through us;
    # pairs of different networks, because bridged traffic inside one network passes this hook too
    # (where br_netfilter hands bridged frames to the IP hooks: bridge-nf-call-iptables 1, as in a machine
    # that loads it; a lab host sets 0, see shoal.lab.network)
    out += _chain("task-forward", ["ct state established,related accept", "ct status dnat accept", "drop"])
    # a connection a peer forwarded that no published port here took (dsr.py): refused, never sent back
    bounce = [f'iifname "{uplink}" oifname "{uplink}" ip daddr @dsr-peers meta l4proto tcp reject with tcp reset'] \
        if uplink else []
    return out + _chain("filter-forward", ["ct state established,related accept", *bounce,
                                           "ip saddr . ip daddr @cross-networks jump task-forward"],
                        "type filter hook forward priority 0; policy accept;")


def cross_pairs(sources: tuple[str, ...], routed: tuple[str, ...] = ()) -> list[str]:
    """``a . b`` for every ordered pair of different networks among ``sources`` (nested ones folded in), and
    both ways between each of them and each ``routed`` subnet (another node's tasks, reached by a route)."""
    nets = [ipaddress.IPv4Network(s) for s in sources]
    top = sorted({n for n in nets if not any(o != n and n.subnet_of(o) for o in nets)})
    far = sorted({ipaddress.IPv4Network(r) for r in routed} - set(top))
    pairs = [f"{a} . {b}" for a in top for b in top if a != b]
    return pairs + [f"{a} . {b}" for r in far for t in top for a, b in ((t, r), (r, t))]


def _base_chains(uplink: str = "") -> list[str]:
    local = "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport"
    anyport = "meta l4proto { tcp, udp } ip daddr vmap"  # a VIP answering on every port (Swarm's VIP)
    out = _chain("services", ["ip daddr . meta l4proto . th dport vmap @vips", f"{anyport} @vips-any",
                              f"{local} vmap @published"])
    out += _chain("no-endpoints", ["ip daddr . meta l4proto . th dport vmap @vips-empty",
                                   f"{anyport} @vips-any-empty", f"{local} vmap @published-empty"])
    out += _chain("reject-chain", ["meta l4proto tcp reject with tcp reset", "reject"])
    out += _chain("mark-for-masquerade", [f"meta mark set meta mark | {MASQ_MARK:#x}"])
    # nat chains run for a connection's first packet only: a connection in flight keeps going when its
    # service loses its last endpoint, and no other packet meets these lookups. Before routing: a VIP
    # may have no route on this node. (dstnat is refused for output by nft 1.0.6: numbers)
    # direct server return (dsr.py): a connection a peer forwarded to one of this node's tasks, and one this
    # node's netdev table picked for its own tasks, go to those tasks (or, if none serves, the port's chain)
    forwarded = [f'iifname "{uplink}" ip daddr @dsr-peers tcp dport vmap @dsr-ports',
                 f"meta mark & {LOCAL_MARK:#x} == {LOCAL_MARK:#x} tcp dport vmap @dsr-ports",
                 f"meta mark & {STACK_MARK:#x} == {STACK_MARK:#x} tcp dport vmap @dsr-stack"] if uplink else []
    for hook in ("prerouting", "output"):
        out += _chain(f"nat-{hook}", [*(forwarded if hook == "prerouting" else []), "jump no-endpoints", "jump services"],
                      f"type nat hook {hook} priority -100; policy accept;")
    masq = f"meta mark & {MASQ_MARK:#x} == {MASQ_MARK:#x} masquerade"
    out += _chain("nat-postrouting", [masq], "type nat hook postrouting priority 100; policy accept;")
    untracked = [f"udp dport {VXLAN_PORT} notrack"]  # the overlays' own packets (see the module docstring)
    bridged = f'iifname "{OVERLAY_BRIDGES}*" fib daddr type != local notrack'  # an overlay's layer-2 traffic
    for hook in ("prerouting", "output"):
        out += _chain(f"raw-{hook}", [*untracked, *([bridged] if hook == "prerouting" else [])],
                      f"type filter hook {hook} priority raw; policy accept;")
    return out


def _elements(items: list[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def full_text(rs: Ruleset) -> str:
    """The whole ``table ip shoal`` block."""
    lines = [f"table ip {TABLE} {{", "\tset local-sources {", "\t\ttype ipv4_addr; flags interval; auto-merge;"]
    if rs.sources:
        lines.append(f"\t\telements = {_elements(list(rs.sources))}")
    lines += ["\t}", "\tset cross-networks {", "\t\ttype ipv4_addr . ipv4_addr; flags interval;"]
    if len(pairs := cross_pairs(rs.sources, rs.routed)) > 0:
        lines.append(f"\t\telements = {_elements(pairs)}")
    lines += ["\t}", "\tset dsr-peers {", "\t\ttype ipv4_addr;"]
    if rs.peers:
        lines.append(f"\t\telements = {_elements(list(rs.peers))}")
    lines.append("\t}")
    for name, key_type in MAP_TYPES.items():
        lines += [f"\tmap {name} {{", f"\t\ttype {key_type} : verdict"]
        entries = rs.maps.get(name, {})
        if entries:
            lines.append(f"\t\telements = {_elements([f'{k} : {v}' for k, v in entries.items()])}")
        lines.append("\t}")
    lines += _base_chains(rs.uplink) + _guard_chains(rs.task_ports, rs.uplink)
    for name, rules in rs.chains.items():
        lines += _chain(name, rules)
    return "\n".join([*lines, "}", ""])


def replace_text(rs: Ruleset, netdev: dict[str, list[str]] | None = None) -> str:
    """The ``nft -f`` file that replaces the table's whole contents atomically, with shoal's netdev tables
    (``netdev``: those loaded now, name -> chains; see ``dsr.first_load``)."""
    return f"{removal()}{full_text(rs)}{dsr.first_load(rs.netdev, netdev or {})}"


def removal() -> str:
    """The ``nft -f`` file that removes shoal's table (and nothing else); harmless when it is absent."""
    return f"add table ip {TABLE}\ndelete table ip {TABLE}\n"


def _endpoints_first(names: set[str]) -> list[str]:
    return sorted(names, key=lambda n: (EP_MARK not in n, n))


def _map_changes(old: Ruleset, new: Ruleset) -> list[str]:
    out = []
    for name in MAP_TYPES:
        before, after = old.maps.get(name, {}), new.maps.get(name, {})
        gone = [k for k, v in before.items() if after.get(k) != v]
        came = [f"{k} : {v}" for k, v in after.items() if before.get(k) != v]
        if gone:
            out.append(f"delete element ip {TABLE} {name} {_elements(gone)}")
        if came:
            out.append(f"add element ip {TABLE} {name} {_elements(came)}")
    return out


def delta(old: Ruleset, new: Ruleset) -> str | None:
    """The transaction turning loaded ``old`` into ``new`` ("" when equal; None: replace it whole)."""
    if (old.task_ports, old.uplink) != (new.task_ports, new.uplink):
        return None
    t = f"ip {TABLE}"
    out: list[str] = []
    for name in _endpoints_first(set(new.chains) - set(old.chains)):
        out += [f"add chain {t} {name}", *(f"add rule {t} {name} {r}" for r in new.chains[name])]
    for name in sorted(n for n in set(new.chains) & set(old.chains) if new.chains[n] != old.chains[n]):
        out += [f"flush chain {t} {name}", *(f"add rule {t} {name} {r}" for r in new.chains[name])]
    if (old.sources, old.routed) != (new.sources, new.routed):
        out.append(f"flush set {t} local-sources")
        if new.sources:
            out.append(f"add element {t} local-sources {_elements(list(new.sources))}")
        out.append(f"flush set {t} cross-networks")
        if pairs := cross_pairs(new.sources, new.routed):
            out.append(f"add element {t} cross-networks {_elements(pairs)}")
    if old.peers != new.peers:
        out.append(f"flush set {t} dsr-peers")
        if new.peers:
            out.append(f"add element {t} dsr-peers {_elements(list(new.peers))}")
    out += _map_changes(old, new)
    for name in reversed(_endpoints_first(set(old.chains) - set(new.chains))):  # frontends before endpoints
        out += [f"flush chain {t} {name}", f"delete chain {t} {name}"]
    return "".join(line + "\n" for line in out) + dsr.delta(old.netdev, new.netdev)
