"""Idempotent netlink steps over one ``AsyncIPRoute``: each says what it wants, not what to change.

Every step reads the current state first (or tolerates "already exists" / "no such device"), so the
node plumbing built from them can run again after an agent restart without disturbing tasks that
are still serving. Devices shoal creates carry the alias ``MARK`` so cleanup removes exactly those
and nothing of the machine's or of anyone else.
"""

from __future__ import annotations

import errno
import ipaddress
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

MARK = "shoal-net"  # IFLA_IFALIAS of every device shoal adds (the lab's own devices use "shoal-lab-...")
ZERO_MAC = "00:00:00:00:00:00"


class PlumbingError(RuntimeError):
    """A netlink step that failed; the message names the device and the kernel's reason."""


def fail(what: str, e: NetlinkError) -> PlumbingError:
    """A readable error for a failed netlink request."""
    return PlumbingError(f"{what}: {e.args[1] if len(e.args) > 1 else e}")


async def lookup(ipr: AsyncIPRoute, ifname: str) -> int | None:
    """The index of the link called ``ifname``, or None."""
    found = await ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


async def link_info(ipr: AsyncIPRoute, index: int) -> Any:
    """The link message of ``index`` (attributes read with ``.get``)."""
    (msg,) = await ipr.link("get", index=index)
    return msg


def kind_of(msg: Any) -> str | None:
    """A link message's kind (``bridge``, ``veth``, ``vxlan``...)."""
    return msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")


async def create(ipr: AsyncIPRoute, ifname: str, kind: str, **attrs: Any) -> int:
    """Create a link (tolerating a concurrent creator) and return its index."""
    try:
        await ipr.link("add", ifname=ifname, kind=kind, **attrs)
    except NetlinkError as e:
        if e.code != errno.EEXIST:
            raise fail(f"cannot create {kind} {ifname}", e) from None
    index = await lookup(ipr, ifname)
    if index is None:
        raise PlumbingError(f"{kind} {ifname} vanished right after it was created")
    return index


async def delete(ipr: AsyncIPRoute, ifname: str) -> bool:
    """Delete the link called ``ifname``; False when there was none."""
    index = await lookup(ipr, ifname)
    if index is None:
        return False
    try:
        await ipr.link("del", index=index)
    except NetlinkError as e:
        if e.code != errno.ENODEV:
            raise fail(f"cannot delete {ifname}", e) from None
    return True


async def configure(ipr: AsyncIPRoute, index: int, **attrs: Any) -> None:
    """Set link attributes (``state="up"``, ``mtu``, ``master``, ``ifalias``...); skipped when empty."""
    attrs = {k: v for k, v in attrs.items() if v is not None}
    if not attrs:
        return
    try:
        await ipr.link("set", index=index, **attrs)
    except NetlinkError as e:
        raise fail(f"cannot set {', '.join(sorted(attrs))} on link {index}", e) from None


async def addresses(ipr: AsyncIPRoute, index: int) -> set[ipaddress.IPv4Interface]:
    """The IPv4 addresses (with prefix) on link ``index``."""
    out = set()
    async for msg in await ipr.addr("dump", index=index, family=2):
        out.add(ipaddress.IPv4Interface(f"{msg.get('IFA_ADDRESS')}/{msg['prefixlen']}"))
    return out


async def ensure_address(ipr: AsyncIPRoute, index: int, iface: ipaddress.IPv4Interface) -> None:
    """Make sure ``iface`` (address/prefix) is on link ``index``; other addresses are left alone."""
    if iface not in await addresses(ipr, index):
        await add_address(ipr, index, iface)


async def add_address(ipr: AsyncIPRoute, index: int, iface: ipaddress.IPv4Interface) -> None:
    """Add ``iface`` to link ``index`` without reading its addresses first (one there already is fine)."""
    try:
        await ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
    except NetlinkError as e:
        if e.code != errno.EEXIST:
            raise fail(f"cannot add address {iface} to link {index}", e) from None


async def ensure_route(ipr: AsyncIPRoute, dst: str, gateway: ipaddress.IPv4Address) -> None:
    """A route to ``dst`` (a CIDR; ``0.0.0.0/0`` for the default) via ``gateway``, replacing another."""
    try:
        await ipr.route("replace", dst=dst, gateway=str(gateway))
    except NetlinkError as e:
        raise fail(f"cannot route {dst} via {gateway}", e) from None


async def marked(ipr: AsyncIPRoute) -> list[tuple[str, str]]:
    """``(name, kind)`` of every link shoal added (alias ``MARK``), veths first, bridges last."""
    found = []
    async for msg in await ipr.link("dump"):
        if (msg.get("IFLA_IFALIAS") or "").startswith(MARK):
            found.append((msg.get("IFLA_IFNAME"), kind_of(msg) or ""))
    order = {"veth": 0, "vxlan": 1, "bridge": 2}
    return sorted(found, key=lambda nk: (order.get(nk[1], 1), nk[0]))


async def flood_peers(ipr: AsyncIPRoute, index: int) -> set[str]:
    """The remote addresses the VXLAN device ``index`` floods unknown traffic to (all-zero FDB entries)."""
    peers = set()
    async for msg in await ipr.fdb("dump", ifindex=index):
        if msg["ifindex"] == index and msg.get("NDA_LLADDR") == ZERO_MAC and msg.get("NDA_DST"):
            peers.add(msg.get("NDA_DST"))
    return peers


async def set_flood_peer(ipr: AsyncIPRoute, index: int, peer: str, present: bool) -> None:
    """Add (``present``) or remove one all-zero FDB entry towards ``peer``."""
    try:
        await ipr.fdb("append" if present else "del", ifindex=index, lladdr=ZERO_MAC, dst=peer)
    except NetlinkError as e:
        if e.code not in ((errno.EEXIST,) if present else (errno.ENOENT, errno.ENODEV)):
            raise fail(f"cannot {'add' if present else 'remove'} VXLAN peer {peer}", e) from None
