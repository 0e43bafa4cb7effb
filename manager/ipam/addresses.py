"""Addresses inside one subnet: who holds which address, as plain serializable data.

A node's task subnet, an overlay network's subnet and the ingress network each get one
``AddressSpace``. The first host address is the gateway (the bridge's address on a node, never given
to a task); the network and broadcast addresses are never handed out. Allocation is keyed by owner (a
task id, or ``vip:<service>`` for a service's virtual IP) and idempotent: asking again for the same
owner returns the address it already holds, so a retried store transaction or a re-adopted task keeps
its address. A released address becomes free at once, but allocation walks forward from the last
address handed out (next-fit), so a just-released address is the last to be reused: a late packet or a
stale ARP entry for a task that ended does not reach its successor.

The state is a dict of ``{address: owner}`` plus the cursor, which is what the store keeps
(``to_dict``/``from_dict``); everything here is pure and synchronous.
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


class IpamError(ValueError):
    """An allocation that cannot be made: the message names what is wrong (shown to the user as is)."""


def parse_network(cidr: str, what: str = "subnet") -> ipaddress.IPv4Network:
    """An IPv4 network from ``cidr``; refuses host bits, IPv6 and junk with one clear message."""
    try:
        net = ipaddress.ip_network(cidr, strict=True)
    except ValueError as e:
        raise IpamError(f"invalid {what} {cidr!r}: {e}") from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise IpamError(f"invalid {what} {cidr!r}: only IPv4 is supported")
    if net.prefixlen > 29:
        raise IpamError(f"invalid {what} {cidr!r}: prefix /{net.prefixlen} leaves no room for tasks (at most /29)")
    return net


def _parse(text: str) -> ipaddress.IPv4Address:
    """A dotted quad as an address; 5x quicker than ``IPv4Address(text)`` (a stored plan holds thousands)."""
    try:
        return ipaddress.IPv4Address(int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big"))
    except (OSError, TypeError):
        raise IpamError(f"invalid address {text!r}") from None


@dataclass
class AddressSpace:
    """The addresses of one subnet and their owners. ``gateway`` is reserved and never allocated.

    Beside ``owners`` (the record) the space keeps its inverse, address by owner, so that a lookup does
    not walk the subnet: the ingress network holds an address for every node and every task that
    publishes a port (thousands), and each allocator pass looks every one of them up.
    """

    subnet: ipaddress.IPv4Network
    owners: dict[ipaddress.IPv4Address, str] = field(default_factory=dict)
    cursor: int = 0  # offset (from the network address) of the last address handed out
    _by_owner: dict[str, ipaddress.IPv4Address] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_owner = {o: a for a, o in self.owners.items()}

    @classmethod
    def of(cls, cidr: str) -> AddressSpace:
        """An empty address space for the subnet ``cidr``."""
        return cls(parse_network(cidr))

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """The first host address: the bridge's (or the overlay's) own address."""
        return self.subnet.network_address + 1

    @property
    def capacity(self) -> int:
        """How many addresses can be handed out (hosts minus the gateway)."""
        return self.subnet.num_addresses - 3

    def _first(self) -> int:
        return 2  # network address and gateway come before

    def _last(self) -> int:
        return self.subnet.num_addresses - 2  # broadcast comes after

    def lookup(self, owner: str) -> ipaddress.IPv4Address | None:
        """The address ``owner`` holds, if any."""
        return self._by_owner.get(owner)

    def _hold(self, addr: ipaddress.IPv4Address, owner: str) -> None:
        self.owners[addr] = owner
        self._by_owner[owner] = addr

    def allocate(self, owner: str, within: ipaddress.IPv4Network | None = None,
                 avoid: ipaddress.IPv4Network | None = None) -> ipaddress.IPv4Address:
        """The address for ``owner``: the one it holds, else a free one.

        Without ``within``, the next free address after the cursor (skipping ``avoid``); with it, the
        lowest free address inside that block (VIPs, which live in a block of their own).
        """
        held = self.lookup(owner)
        if held is not None:
            return held
        first, last = self._first(), self._last()
        base = int(self.subnet.network_address)
        if within is not None:
            lo = max(first, int(within.network_address) - base)
            hi = min(last, int(within.broadcast_address) - base)
            offsets: Iterable[int] = range(lo, hi + 1)
        else:
            start = self.cursor + 1 if first <= self.cursor < last else first
            offsets = itertools.chain(range(start, last + 1), range(first, start))
        for offset in offsets:
            addr = self.subnet.network_address + offset
            if addr in self.owners or (avoid is not None and addr in avoid):
                continue
            self._hold(addr, owner)
            if within is None:
                self.cursor = offset
            return addr
        where = f"block {within} of subnet {self.subnet}" if within is not None else f"subnet {self.subnet}"
        raise IpamError(f"{where} has no free address left ({len(self.owners)} in use)")

    def claim(self, owner: str, address: str | ipaddress.IPv4Address) -> ipaddress.IPv4Address:
        """Record that ``owner`` holds ``address`` (a re-adopted task keeps its address).

        Idempotent for the same owner; refused when another owner holds it, when the owner already
        holds a different address, or when the address is outside the subnet or reserved.
        """
        addr = address if isinstance(address, ipaddress.IPv4Address) else _parse(address)
        if addr not in self.subnet:
            raise IpamError(f"address {addr} is not in subnet {self.subnet}")
        offset = int(addr) - int(self.subnet.network_address)
        if not self._first() <= offset <= self._last():
            raise IpamError(f"address {addr} is reserved in subnet {self.subnet} (network, gateway or broadcast)")
        holder = self.owners.get(addr)
        if holder is not None and holder != owner:
            raise IpamError(f"address {addr} is already held by {holder}")
        held = self.lookup(owner)
        if held is not None and held != addr:
            raise IpamError(f"{owner} already holds {held}, not {addr}")
        self._hold(addr, owner)
        return addr

    def release(self, owner: str) -> ipaddress.IPv4Address | None:
        """Free the address ``owner`` holds; returns it (None when it held none: releasing twice is fine)."""
        addr = self.lookup(owner)
        if addr is not None:
            del self.owners[addr]
            del self._by_owner[owner]
        return addr

    def clear(self) -> None:
        """Free every address (the network is being dropped)."""
        self.owners.clear()
        self._by_owner.clear()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly data for the store."""
        return {
            "subnet": str(self.subnet),
            "cursor": self.cursor,
            "owners": {str(a): o for a, o in sorted(self.owners.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AddressSpace:
        """The inverse of ``to_dict``; refuses an address outside the subnet (corrupt data)."""
        space = cls(parse_network(data["subnet"]), cursor=int(data.get("cursor", 0)))
        for addr, owner in data.get("owners", {}).items():
            space.claim(owner, addr)
        return space
