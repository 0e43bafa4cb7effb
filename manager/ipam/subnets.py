"""Subnets carved out of the cluster pool, and the rule that no two of them overlap.

Every node's task subnet and every overlay network's subnet is recorded here with its owner
(``node/<id>``, ``network/<name>``). Automatic subnets come from the cluster pool (10.210.0.0/16 by
default, ``--default-addr-pool`` to change it), lowest free block first; a subnet the user names with
``--subnet`` may lie outside the pool, but it may not overlap any subnet already taken (the error names
the holder). Pure data, serializable with ``to_dict``/``from_dict``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from shoal.manager.ipam.addresses import IpamError, parse_network

DEFAULT_POOL = "10.210.0.0/16"
DEFAULT_PREFIX = 24


def _describe(owner: str) -> str:
    kind, _, name = owner.partition("/")
    return f"{kind} {name!r}" if name else owner


@dataclass
class SubnetPool:
    """Which subnets are taken and by whom; automatic ones come from ``pool``."""

    pool: ipaddress.IPv4Network
    taken: dict[ipaddress.IPv4Network, str] = field(default_factory=dict)

    @classmethod
    def of(cls, pool: str = DEFAULT_POOL) -> SubnetPool:
        """An empty pool over the CIDR ``pool``."""
        return cls(parse_network(pool, "address pool"))

    def lookup(self, owner: str) -> ipaddress.IPv4Network | None:
        """The subnet ``owner`` holds, if any."""
        for net, who in self.taken.items():
            if who == owner:
                return net
        return None

    def overlapping(self, subnet: ipaddress.IPv4Network) -> tuple[ipaddress.IPv4Network, str] | None:
        """The first taken subnet that overlaps ``subnet`` and its owner, if any."""
        for net, who in sorted(self.taken.items()):
            if net.overlaps(subnet):
                return net, who
        return None

    def allocate(self, owner: str, prefixlen: int = DEFAULT_PREFIX) -> ipaddress.IPv4Network:
        """The subnet ``owner`` holds, else the lowest free ``/prefixlen`` block of the pool."""
        held = self.lookup(owner)
        if held is not None:
            return held
        if not self.pool.prefixlen <= prefixlen <= 29:
            raise IpamError(f"cannot carve /{prefixlen} subnets out of the pool {self.pool}")
        candidate = ipaddress.IPv4Network((self.pool.network_address, prefixlen))
        size = candidate.num_addresses
        end = int(self.pool.broadcast_address)
        while int(candidate.network_address) <= end:
            hit = self.overlapping(candidate)
            if hit is None:
                self.taken[candidate] = owner
                return candidate
            # skip past the block that is in the way, aligned to our size
            nxt = max(int(hit[0].broadcast_address) + 1, int(candidate.network_address) + size)
            nxt = (nxt + size - 1) // size * size
            if nxt > end:
                break
            candidate = ipaddress.IPv4Network((nxt, prefixlen))
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
        self.taken[subnet] = owner
        return subnet

    def release(self, owner: str) -> ipaddress.IPv4Network | None:
        """Free the subnet ``owner`` holds (None when it held none)."""
        net = self.lookup(owner)
        if net is not None:
            del self.taken[net]
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
