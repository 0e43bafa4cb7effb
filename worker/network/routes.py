"""Routes to the task subnets of the nodes on this node's own link, so the routing mesh needs no VXLAN there.

The routing mesh reaches a task on another node (a published port answered on a node that runs none)
after DNAT and masquerade. Over the ingress overlay that costs every packet a VXLAN encapsulation, a
UDP round through the netfilter hooks of both nodes and a second bridge, on the sender's CPU (issue 10's
benchmark: ~0.85 of going straight to the task). When the other node is on the same link (its underlay
address is reached without a gateway), its task subnet is routed straight to it instead, as flannel's
host-gw / DirectRouting does, and the mesh DNATs to the task's address on its node bridge: a packet then
takes the path it would take to the task directly, plus one routing node (see ``plan.mesh_for``).

It is the node operator's choice (``shoal worker|manager --direct-routing``, off by default): the kernel
sees a peer "on link" on a cloud's virtual network too, whose fabric drops packets addressed to anything
but an instance's own address (source/destination checks), as it does flannel's host-gw. A node without
it routes nothing and reaches every other node's tasks over the overlay, as before.

Only task subnets are routed, one route per node, each marked with the protocol ``PROTO`` so that
``ensure`` can tell its own routes from anyone else's (it never replaces a route it did not add: that
node is then reached over VXLAN as before) and ``remove`` takes exactly them away. A node behind a
router keeps the overlay. Isolation: a task reaches another node's tasks through such a route only when
the mesh DNATed it (``nfttable``'s ``cross-networks`` pairs include the routed subnets).
"""

from __future__ import annotations

import errno
import ipaddress
from collections.abc import Iterable

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from shoal.worker.network.links import PlumbingError, fail

PROTO = 83  # rtm_protocol of shoal's routes (unassigned in iproute2's rt_protos)
MAIN_TABLE = 254
UNICAST = 1  # rtm_type


async def on_link(ipr: AsyncIPRoute, address: str) -> bool:
    """Whether ``address`` is reached directly on a link of this node (no gateway, not one of its own)."""
    return await link_to(ipr, address) is not None


async def link_to(ipr: AsyncIPRoute, address: str) -> int | None:
    """The index of the device ``address`` is reached on directly (no gateway, not one of this node's own)."""
    try:
        (msg, *_) = await ipr.route("get", dst=address)
    except (NetlinkError, ValueError):
        return None  # no route at all
    return msg.get("RTA_OIF") if msg["type"] == UNICAST and not msg.get("RTA_GATEWAY") else None


async def device_holding(ipr: AsyncIPRoute, address: str) -> tuple[int, str] | None:
    """(index, name) of the device holding ``address`` (this node's underlay: its uplink), if any."""
    found = None
    async for msg in await ipr.addr("dump", family=2):
        if found is None and address in (msg.get("IFA_ADDRESS"), msg.get("IFA_LOCAL")):
            found = msg["index"]
    if found is None:
        return None
    (link, *_) = await ipr.link("get", index=found)
    return found, link.get("IFLA_IFNAME")


async def current(ipr: AsyncIPRoute) -> dict[str, tuple[int, str | None]]:
    """The main table's IPv4 routes with a destination prefix: ``{cidr: (protocol, gateway)}``."""
    out: dict[str, tuple[int, str | None]] = {}
    async for msg in await ipr.route("dump", family=2, table=MAIN_TABLE):
        if msg.get("RTA_DST") and msg["table"] == MAIN_TABLE:
            out[f"{msg.get('RTA_DST')}/{msg['dst_len']}"] = (msg["proto"], msg.get("RTA_GATEWAY"))
    return out


async def ensure(ipr: AsyncIPRoute, wanted: Iterable[tuple[str, str]]) -> frozenset[str]:
    """Route each ``(subnet, underlay)`` whose underlay is on this node's link via that underlay; remove
    shoal's routes to any other subnet. Returns the subnets routed now (the mesh reaches their tasks)."""
    have = await current(ipr)
    routed: set[str] = set()
    for subnet, via in wanted:
        cidr = str(ipaddress.IPv4Network(subnet))
        proto, gateway = have.get(cidr, (PROTO, None))
        if proto != PROTO or not await on_link(ipr, via):
            continue  # someone else's route to it, or a node behind a router: the overlay carries it
        if gateway != via:
            try:
                await ipr.route("replace", dst=cidr, gateway=via, proto=PROTO)
            except NetlinkError as e:
                raise fail(f"cannot route {cidr} via {via}", e) from None
        routed.add(cidr)
    for cidr, (proto, _) in have.items():
        if proto == PROTO and cidr not in routed:
            await _delete(ipr, cidr)
    return frozenset(routed)


async def remove(ipr: AsyncIPRoute) -> list[str]:
    """Delete every route shoal added (node leaving or shutting down); returns their subnets."""
    gone = [cidr for cidr, (proto, _) in (await current(ipr)).items() if proto == PROTO]
    for cidr in gone:
        await _delete(ipr, cidr)
    return gone


async def leftovers(ipr: AsyncIPRoute) -> list[str]:
    """``route <cidr>`` for each route of shoal's that still exists (for checks after cleanup)."""
    return [f"route {cidr}" for cidr, (proto, _) in (await current(ipr)).items() if proto == PROTO]


async def _delete(ipr: AsyncIPRoute, cidr: str) -> None:
    try:
        await ipr.route("del", dst=cidr, proto=PROTO, table=MAIN_TABLE)
    except NetlinkError as e:
        if e.code != errno.ESRCH:
            raise PlumbingError(f"cannot remove the route to {cidr}: {e}") from None
