"""Subnets carved out of the cluster pool, and the rule that no two of them overlap.

Every node's task subnet and every overlay network's subnet is recorded here with its owner
(``node/<id>``, ``network/<name>``). Automatic subnets come from the cluster pool (10.210.0.0/16 by
default, ``--default-addr-pool`` to change it), lowest free block first; a subnet the user names with
``--subnet`` may lie outside the pool, but it may not overlap any subnet already taken (the error names
the holder). Pure data, serializable with ``to_dict``/``from_dict``.
"""

from __future__ import annotations

import bisect
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from shoal.manager.ipam.addresses import IpamError, parse_network

DEFAULT_POOL = "10.210.0.0/16"
DEFAULT_PREFIX = 24
INGRESS_PREFIX_MIN = 18  # the largest ingress: room for 1,000 nodes and 10,000 tasks that publish a port


def ingress_prefix_for(pool: ipaddress.IPv4Network) -> int:
    """The ingress network's size in ``pool``: a /18 (12,285 addresses besides its VIP block), or a
    quarter of a pool too small for that.

    Every node holds an address on ingress (its end of the routing mesh) and so does every task that
    publishes a port, so a /24 (what user networks get, as in Swarm) stops a cluster at ~190 nodes.
    """
    return min(29, max(INGRESS_PREFIX_MIN, pool.prefixlen + 2))


def _describe(owner: str) -> str:
    kind, _, name = owner.partition("/")
    return f"{kind} {name!r}" if name else owner


@dataclass
class SubnetPool:
    """Which subnets are taken and by whom; automatic ones come from ``pool``.

    ``taken`` is the record; beside it, the taken subnets as integer ranges sorted by their start (they
    never overlap, so their ends are sorted too) and the owners' subnets by owner, so that a lookup, an
    overlap check and finding the lowest free block take a bisection each instead of a pass over every
    subnet: a 1,000-node cluster's plan is read and extended in milliseconds, not the seconds that
    stalled the leader's event loop.
    """

    pool: ipaddress.IPv4Network
    taken: dict[ipaddress.IPv4Network, str] = field(default_factory=dict)
    _by_owner: dict[str, ipaddress.IPv4Network] = field(default_factory=dict, init=False, repr=False, compare=False)
    _starts: list[int] = field(default_factory=list, init=False, repr=False, compare=False)
    _ends: list[int] = field(default_factory=list, init=False, repr=False, compare=False)
    _nets: list[ipaddress.IPv4Network] = field(default_factory=list, init=False, repr=False, compare=False)
    _free_from: dict[int, int] = field(default_factory=dict, init=False, repr=False, compare=False)
    """Per prefix length, an address below which no aligned block of that size is free (a search starts there)."""

    def __post_init__(self) -> None:
        given, self.taken = self.taken, {}
        for net, owner in given.items():
            self._add(net, owner)

    @classmethod
    def of(cls, pool: str = DEFAULT_POOL) -> SubnetPool:
        """An empty pool over the CIDR ``pool``."""
        return cls(parse_network(pool, "address pool"))

    def _add(self, net: ipaddress.IPv4Network, owner: str) -> None:
        i = bisect.bisect_left(self._starts, int(net.network_address))
        self._starts.insert(i, int(net.network_address))
        self._ends.insert(i, int(net.broadcast_address))
        self._nets.insert(i, net)
        self.taken[net] = owner
        self._by_owner[owner] = net

    def lookup(self, owner: str) -> ipaddress.IPv4Network | None:
        """The subnet ``owner`` holds, if any."""
        return self._by_owner.get(owner)

    def _first_overlap(self, start: int, end: int) -> int | None:
        """The index of the lowest taken range that overlaps [start, end], if any."""
        i = bisect.bisect_left(self._ends, start)  # the first range that does not end before ``start``
        return i if i < len(self._nets) and self._starts[i] <= end else None

    def overlapping(self, subnet: ipaddress.IPv4Network) -> tuple[ipaddress.IPv4Network, str] | None:
        """The first taken subnet that overlaps ``subnet`` and its owner, if any."""
        i = self._first_overlap(int(subnet.network_address), int(subnet.broadcast_address))
        return None if i is None else (self._nets[i], self.taken[self._nets[i]])

    def allocate(self, owner: str, prefixlen: int = DEFAULT_PREFIX) -> ipaddress.IPv4Network:
        """The subnet ``owner`` holds, else the lowest free ``/prefixlen`` block of the pool."""
        held = self.lookup(owner)
        if held is not None:
            return held
        if not self.pool.prefixlen <= prefixlen <= 29:
            raise IpamError(f"cannot carve /{prefixlen} subnets out of the pool {self.pool}")
        size = 1 << (32 - prefixlen)
        start, end = int(self.pool.network_address), int(self.pool.broadcast_address)
        start = max(start, self._free_from.get(prefixlen, start))
        i = bisect.bisect_left(self._ends, start)  # the taken ranges from here on, in order
        while start + size - 1 <= end:
            if i >= len(self._nets) or self._starts[i] > start + size - 1:
                net = ipaddress.IPv4Network((start, prefixlen))
                self._add(net, owner)
                self._free_from[prefixlen] = start + size
                return net
            # skip past the block that is in the way, aligned to our size, and every range left behind
            nxt = max(self._ends[i] + 1, start + size)
            start = (nxt + size - 1) // size * size
            while i < len(self._nets) and self._ends[i] < start:
                i += 1
        raise IpamError(f"the address pool {self.pool} has no free /{prefixlen} subnet left ({len(self.taken)} taken)")

    def claim(self, owner: str, cidr: str) -> ipaddress.IPv4Network:
        """Record ``owner`` on the subnet the user chose; refused when it overlaps another owner's."""
        subnet = parse_network(cidr)
        held = self.lookup(owner)
        if held is not None:
            if held == subnet:
                return subnet
            raise IpamError(f"{_describe(owner)} already has subnet {held}, not {subnet}")
        hit = self.overlapping(subnet)
        if hit is not None:
            raise IpamError(f"subnet {subnet} overlaps {hit[0]} of {_describe(hit[1])}")
        self._add(subnet, owner)
        return subnet

    def release(self, owner: str) -> ipaddress.IPv4Network | None:
        """Free the subnet ``owner`` holds (None when it held none)."""
        net = self._by_owner.pop(owner, None)
        if net is not None:
            del self.taken[net]
            i = self._nets.index(net)
            del self._starts[i], self._ends[i], self._nets[i]
            low = int(net.network_address)
            for plen, hint in self._free_from.items():  # blocks from here on may be free again
                size = 1 << (32 - plen)
                self._free_from[plen] = min(hint, low // size * size)
        return net

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly data for the store."""
        return {"pool": str(self.pool), "taken": {str(n): o for n, o in sorted(self.taken.items())}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubnetPool:
        """The inverse of ``to_dict``; refuses overlapping subnets (corrupt data)."""
        pool = cls.of(data["pool"])
        for cidr, owner in data.get("taken", {}).items():
            pool.claim(owner, cidr)
        return pool
