"""Direct server return for published TCP ports between nodes on one link: shoal's netdev table, as data.

With ``--direct-routing`` the routing mesh reaches a task on another node on this node's link by a
plain route (routes.py), but its replies still come back through the node that received the
connection, and that node tracks and NATs every packet both ways (issue 10: ~0.8-0.96 of going to
the task directly). With direct server return the receiving node forwards each packet of a
connection to a published port, unchanged, to the node whose task serves it, before its IP stack
sees the packet (a ``netdev`` table's ingress hook on its uplink, ``fwd ip to``); that node DNATs it to
one of its own tasks (``nfttable``: ``ip daddr @dsr-peers``) and its conntrack turns the reply's
source back into the receiving node's address and port, so the reply goes straight to the client.
The receiving node keeps no state for it but one element of a map; the client's address is kept for
every task.

``table netdev shoal-dsr-<uplink>`` (``netdev_table``):

* ``uplink-in`` (ingress hook on the uplink): TCP to a published port (``ports``) of this node's own
  address goes to ``pinned``; any other packet meets one comparison and one set lookup. A port leaves
  ``ports`` only when the table is made again (a restart): connections pinned while it had a share go
  on after it lost it;
* ``pinned``: the connection's element in ``flows`` (``ip saddr . tcp sport . tcp dport`` -> the task
  node's address, as a packet mark: ``mark_of``) sends it to that node's chain ``at-<node>``, which
  forwards it there; one in ``local`` leaves it to this node (marked ``LOCAL_MARK`` for
  its first packet: this node's own tasks). A connection found in neither that opens (SYN without ACK)
  is picked a node by the published port (``pick``), weighted by each node's number of serving tasks of
  the service, and pinned there. Anything else (a connection that began before this table existed or
  after its elements went) is left to the IP stack, where the conntrack mesh carries it as before.
  Elements are added on SYN only and only looked up afterwards (an update per packet cost a third of
  the gain, mesh17's prototype): a packet with data (PSH) and one packet in ``REFRESH_EVERY`` renew the
  pin's idle timeout (``IDLE_TIMEOUT_S``, IPVS's and so Swarm's 900 s); FIN or RST shortens it to
  ``CLOSING_TIMEOUT_S``; an unanswered SYN's pin lasts ``SYN_TIMEOUT_S``;
* a SYN whose pick is this node's tasks is marked for them; one picked for another node's task while
  the client is that node (or one of its tasks) is left to the conntrack mesh; a SYN that cannot be
  pinned (``flows`` holds ``FLOWS_SIZE`` elements) too: never dropped.

Tasks on nodes not reached this way (behind a router: VXLAN) keep their share through the conntrack
mesh (``STACK``: marked ``STACK_MARK``, nat prerouting balances it over those tasks only). The table is reloaded with ``nfttable``'s in one ``nft -f`` transaction; elements of
``flows`` and ``local`` outlive every reload and an agent restart (``first_load``), so pinned
connections keep going. A pin to a node that has left lasts until it times out (its connections went
with the node; a new connection from the same client address and port within that time is lost).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

TABLE_PREFIX = "shoal-dsr-"
LOCAL_MARK = 0x400000  # a packet mark bit: a connection picked for this node's own tasks (read by nat prerouting)
STACK_MARK = 0x800000  # and one picked for the tasks no peer on the link serves
SELF, STACK = "self", "stack"  # pick targets besides a peer's address: this node's tasks; the conntrack mesh
FLOWS_SIZE = 65536
SYN_TIMEOUT_S, IDLE_TIMEOUT_S, CLOSING_TIMEOUT_S = 60, 900, 120
REFRESH_EVERY = 64
KEY = "ip saddr . tcp sport . tcp dport"


@dataclass(frozen=True)
class Link:
    """This node's uplink (the device holding its underlay ``address``) and the peers on it: ``(underlay,
    task subnet)`` of each other node whose task subnet is routed to it over that device."""

    uplink: str
    address: str
    peers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Share:
    """A published TCP port's split: ``(target, serving tasks)`` with target a peer's address, ``SELF`` or ``STACK``."""

    port: int
    weights: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Dsr:
    """What the netdev table of one node carries: its link and the split of each published TCP port."""

    link: Link
    shares: tuple[Share, ...] = ()


@dataclass(frozen=True)
class NetdevTable:
    """``table netdev <name>``'s variable parts: its chains and the ``pick`` map (port -> chain); the ports
    of ``pick`` are those of the ``ports`` set too."""

    name: str
    device: str
    address: str
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    pick: dict[int, str] = field(default_factory=dict)


def table_name(uplink: str) -> str:
    """The table of ``uplink`` (device names may hold characters nft names may not)."""
    return TABLE_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", uplink)


def shares(link: Link, ports: Iterable[tuple[int, Iterable[str]]]) -> tuple[Share, ...]:
    """The split of each published TCP port from where its serving tasks run (one target per task:
    ``SELF``, a peer's address, or anything else, which becomes ``STACK``). A port no peer serves gets
    no share: the conntrack mesh carries all of it, as without this table."""
    peers = {p for p, _ in link.peers}
    out = []
    for port, targets in sorted(ports):
        count: dict[str, int] = {}
        for t in targets:
            key = t if t == SELF or t in peers else STACK
            count[key] = count.get(key, 0) + 1
        if any(t in peers for t in count):
            out.append(Share(port, tuple(sorted(count.items()))))
    return tuple(out)


def _target_chain(target: str) -> str:
    return f"to-{target}"


def mark_of(address: str) -> str:
    """A peer's address as the packet mark ``flows`` pins a connection to (``meta mark`` holds 32 bits)."""
    return f"{int(ipaddress.IPv4Address(address)):#010x}"


def _target_rules(target: str, link: Link, device: str) -> tuple[str, ...]:
    pin = f"{KEY} timeout {SYN_TIMEOUT_S}s"
    if target == SELF:
        return (f"add @local {{ {pin} }} meta mark set meta mark | {LOCAL_MARK:#x} accept", "accept")
    if target == STACK:
        return (f"add @local {{ {pin} }} meta mark set meta mark | {STACK_MARK:#x} accept", "accept")
    subnet = dict(link.peers)[target]
    return (f"ip saddr {{ {target}, {subnet} }} accept",  # the client is that node or its task: the conntrack mesh
            f'add @flows {{ {pin} : {mark_of(target)} }} fwd ip to {target} device "{device}"',
            "accept")  # not pinned (flows is full): the conntrack mesh


def _renewals(store: str, data: str) -> tuple[str, ...]:
    """A pinned connection's packet renews its element: on data (PSH), one in REFRESH_EVERY, and shortens
    it on FIN or RST (in that order: a FIN with data ends at the closing timeout)."""
    def update(timeout: int) -> str:
        return f"update @{store} {{ {KEY} timeout {timeout}s{data} }}"

    return (f"tcp flags & psh == psh {update(IDLE_TIMEOUT_S)}",
            f"numgen random mod {REFRESH_EVERY} 0 {update(IDLE_TIMEOUT_S)}",
            f"tcp flags & (fin | rst) != 0 {update(CLOSING_TIMEOUT_S)}")


def _pick_rule(share: Share) -> str:
    total = sum(w for _, w in share.weights)
    if len(share.weights) == 1:
        return f"goto {_target_chain(share.weights[0][0])}"
    ranges, at = [], 0
    for target, weight in share.weights:
        span = f"{at}" if weight == 1 else f"{at}-{at + weight - 1}"
        ranges.append(f"{span} : goto {_target_chain(target)}")
        at += weight
    return f"numgen random mod {total} vmap {{ {', '.join(ranges)} }}"


def _fixed_chains(link: Link, device: str) -> dict[str, tuple[str, ...]]:
    """``pinned`` and the chains it sends a pinned connection's packets to: ``at-<peer>`` for each peer
    on the link (a pin outlives its peer's share: its connection goes on) and ``at-self``.

    A pin's existence is read as its mark (``meta mark set ... map @flows``, then a verdict map on the
    mark), never by looking a map up as a set: kernels before 6.4ish (Debian 12's 6.1) refuse that."""
    chains = {f"at-{peer}": (*_renewals("flows", " : meta mark"), f'fwd ip to {peer} device "{device}"')
              for peer, _ in link.peers}
    chains["at-self"] = (*_renewals("local", ""), f"meta mark set meta mark | {LOCAL_MARK:#x} accept")
    marks = ", ".join(f"{mark_of(peer)} : goto at-{peer}" for peer, _ in link.peers)
    chains["pinned"] = (f"meta mark set {KEY} map @flows",
                        *([f"meta mark vmap {{ {marks} }}"] if marks else []),
                        "meta mark set 0",  # pinned to a node that left: the conntrack mesh, unmarked
                        f"{KEY} @local goto at-self",
                        "tcp flags & (syn | ack) == syn tcp dport vmap @pick")
    return chains


def netdev_table(dsr: Dsr) -> NetdevTable:
    """The table for ``dsr``; deterministic."""
    link, device = dsr.link, dsr.link.uplink
    chains: dict[str, tuple[str, ...]] = {}
    for target in sorted({t for s in dsr.shares for t, _ in s.weights}):
        chains[_target_chain(target)] = _target_rules(target, link, device)
    pick = {}
    for share in dsr.shares:
        chains[f"pick-{share.port}"] = (_pick_rule(share),)
        pick[share.port] = f"goto pick-{share.port}"
    chains.update(_fixed_chains(link, device))
    return NetdevTable(table_name(device), device, link.address, chains, pick)


def _chain_lines(name: str, rules: tuple[str, ...], hook: str = "") -> list[str]:
    return [f"\tchain {name} {{", *([f"\t\t{hook}"] if hook else []), *(f"\t\t{r}" for r in rules), "\t}"]


def _order(names: Iterable[str]) -> list[str]:
    """Chains in the order they may be made: targets, then picks, then the fixed ones (each jumps only
    to chains before it)."""
    rank = {"to": 0, "at": 0, "pick": 1, "pinned": 3}
    return sorted(names, key=lambda n: (rank.get(n.split("-")[0], 4), n))


def full_text(t: NetdevTable) -> str:
    """``table netdev ...`` whole (to load into a table that has none of its chains)."""
    sets = [f"\tmap flows {{ type ipv4_addr . inet_service . inet_service : mark; flags dynamic, timeout; "
            f"timeout {IDLE_TIMEOUT_S}s; size {FLOWS_SIZE}; }}",
            f"\tset local {{ type ipv4_addr . inet_service . inet_service; flags dynamic, timeout; "
            f"timeout {IDLE_TIMEOUT_S}s; size {FLOWS_SIZE}; }}",
            "\tmap pick { type inet_service : verdict; }",
            "\tset ports { type inet_service; }"]
    lines = [f"table netdev {t.name} {{", *sets]
    for name in _order(t.chains):
        lines += _chain_lines(name, t.chains[name])
    hook = f'type filter hook ingress device "{t.device}" priority 0; policy accept;'
    lines += _chain_lines("uplink-in", (f"ip daddr {t.address} tcp dport @ports goto pinned",), hook)
    lines.append("}")
    if t.pick:
        lines.append(f"add element netdev {t.name} pick {{ {_elements(t.pick)} }}")
        lines.append(f"add element netdev {t.name} ports {{ {', '.join(str(p) for p in sorted(t.pick))} }}")
    return "\n".join(lines) + "\n"


def _elements(pick: dict[int, str]) -> str:
    return ", ".join(f"{port} : {verdict}" for port, verdict in sorted(pick.items()))


def removal(name: str) -> str:
    """Remove table ``name`` (harmless when it is absent)."""
    return f"add table netdev {name}\ndelete table netdev {name}\n"


def first_load(t: NetdevTable | None, existing: dict[str, list[str]]) -> str:
    """The text that makes the kernel hold ``t`` (None: no table) whatever shoal's netdev tables are now
    (``existing``: table name -> its chains, from a listing): other tables of shoal's go; ``t``'s own
    keeps its ``flows`` and ``local`` elements (connections pinned before an agent restart keep going)
    while its rules and chains are made again."""
    out = [removal(name) for name in sorted(existing) if t is None or name != t.name]
    if t is None:
        return "".join(out)
    if t.name in existing:
        # chain by chain, not ``flush table`` (whether that empties sets too is up to the nft version)
        out += [f"flush chain netdev {t.name} {c}\n" for c in existing[t.name]]
        out.append(f"add map netdev {t.name} pick {{ type inet_service : verdict; }}\nflush map netdev {t.name} pick\n")
        out += [f"delete chain netdev {t.name} {c}\n" for c in existing[t.name]]
    return "".join(out) + full_text(t)


def delta(old: NetdevTable | None, new: NetdevTable | None) -> str:
    """The transaction turning loaded ``old`` into ``new`` ("" when equal). A new uplink or address makes a
    new table (the old one's pins go with it)."""
    if old == new:
        return ""
    if old is None or new is None or (old.name, old.device, old.address) != (new.name, new.device, new.address):
        return (removal(old.name) if old is not None else "") + (full_text(new) if new is not None else "")
    t = f"netdev {new.name}"
    out: list[str] = []
    for name in _order(set(new.chains) - set(old.chains)):
        out += [f"add chain {t} {name}", *(f"add rule {t} {name} {r}" for r in new.chains[name])]
    for name in _order(n for n in set(new.chains) & set(old.chains) if new.chains[n] != old.chains[n]):
        out += [f"flush chain {t} {name}", *(f"add rule {t} {name} {r}" for r in new.chains[name])]
    gone = {p: v for p, v in old.pick.items() if new.pick.get(p) != v}
    came = {p: v for p, v in new.pick.items() if old.pick.get(p) != v}
    if gone:
        out.append(f"delete element {t} pick {{ {', '.join(str(p) for p in sorted(gone))} }}")
    if came:
        out.append(f"add element {t} pick {{ {_elements(came)} }}")
        out.append(f"add element {t} ports {{ {', '.join(str(p) for p in sorted(came))} }}")  # never taken out
    for name in reversed(_order(set(old.chains) - set(new.chains))):
        out += [f"flush chain {t} {name}", f"delete chain {t} {name}"]
    return "".join(line + "\n" for line in out)
