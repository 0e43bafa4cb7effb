"""A node's network plumbing: its task bridge, each task's veth, and one VXLAN per overlay network.

``NodeNet`` holds one long-lived netlink socket on the node's own namespace (the agent's, or a lab
host's) and opens a short-lived one inside a task's namespace while wiring it. Every method states a
wanted state and is idempotent: an agent that restarts while its containers still run calls them again
and the tasks keep their interfaces, addresses and connections. What shoal adds carries an alias
(``links.MARK``), so ``cleanup`` removes exactly that.

Shape per node (names are the caller's, see ``task_ifname``):

* every bridge has a MAC of its own, derived from its address (``bridge_mac``). Left to the kernel, a
  bridge takes the lowest MAC among its ports, so it changed whenever a task whose veth had a lower
  (random) MAC came or went; the other tasks kept the old MAC for the gateway in their ARP caches and
  everything they sent through the node (DNS, VIPs, the world) was dropped until the entry expired,
  for up to about a minute (issue 10: DNS unanswered after tasks were rescheduled);
* a bridge for the node's task subnet, with the gateway address; each task's ``eth0`` is one end of a
  veth whose other end is a port of that bridge (hairpin on, so a task reaching its own service through
  a VIP gets the answer back), with a default route via the gateway;
* per overlay network, a bridge holding the node's own address on that network plus a VXLAN device (no
  address) whose all-zero FDB entries flood to the other nodes; a task gets one more interface on it.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os
from collections.abc import Sequence

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from shoal.worker.network import links, routes
from shoal.worker.network.links import MARK, PlumbingError
from shoal.worker.network.netns import iproute, route_socket, write_sysctl
from shoal.worker.network.nfttable import VXLAN_PORT

VXLAN_OVERHEAD = 50  # outer Ethernet + IP + UDP + VXLAN headers
LOOPBACK_INDEX = 1  # lo's index in every network namespace

Address = str | ipaddress.IPv4Interface


def bridge_mac(address: Address) -> str:
    """The MAC of the bridge holding ``address``: locally administered, made of the address's 4 bytes, so an
    agent that restarts (or a node that comes back) gives the bridge the MAC its tasks have cached."""
    ip = ipaddress.IPv4Interface(address).ip.packed
    return ":".join(f"{b:02x}" for b in (0x02, 0x53, *ip))


def task_ifname(task_id: str, network: str = "") -> str:
    """The node-side veth name of a task's interface on ``network`` (at most 15 characters)."""
    return "shv" + hashlib.sha256(f"{task_id}/{network}".encode()).hexdigest()[:11]


class NodeNet:
    """Plumbing of one node's namespace (``netns`` path, or None for the agent's own)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._ipr: AsyncIPRoute | None = None

    async def open(self) -> None:
        """Open the node's netlink socket (once; kept for the agent's lifetime)."""
        if self._ipr is None:
            ipr = AsyncIPRoute(fileno=route_socket(self.netns).detach())
            await ipr.__aenter__()
            self._ipr = ipr

    async def close(self) -> None:
        """Close the node's netlink socket (the devices stay)."""
        if self._ipr is not None:
            ipr, self._ipr = self._ipr, None
            await ipr.__aexit__(None, None, None)

    @property
    def ipr(self) -> AsyncIPRoute:
        """The open netlink socket on the node's namespace."""
        if self._ipr is None:
            raise PlumbingError("NodeNet is not open")
        return self._ipr

    def enable_forwarding(self) -> None:
        """Let the node route between its bridges, the overlays and its uplink (``net.ipv4.ip_forward``)."""
        write_sysctl(self.netns, "net.ipv4.ip_forward", "1")

    async def ensure_bridge(self, name: str, address: Address | None = None, mtu: int | None = None) -> int:
        """A bridge called ``name``, up, holding ``address`` (the gateway); returns its index.

        With an address the bridge gets its own MAC (``bridge_mac``), set once: see the module docstring."""
        mac = bridge_mac(address) if address is not None else None
        index = await links.lookup(self.ipr, name)
        if index is None:
            index = await links.create(self.ipr, name, "bridge", **({"address": mac} if mac else {}))
        else:
            info = await links.link_info(self.ipr, index)
            if links.kind_of(info) != "bridge":
                raise PlumbingError(f"{name} exists and is not a bridge; shoal will not take it over")
            if mac is not None and info.get("IFLA_ADDRESS") == mac:
                mac = None  # already ours: setting it again would make the kernel flush the node's ARP entries
        await links.configure(self.ipr, index, ifalias=f"{MARK}:bridge", mtu=mtu, address=mac)
        if address is not None:
            await links.ensure_address(self.ipr, index, ipaddress.IPv4Interface(address))
        await links.configure(self.ipr, index, state="up")
        return index

    async def attach_task(
        self,
        bridge: str,
        netns: str,
        host_if: str,
        address: Address,
        gateway: str | ipaddress.IPv4Address | None = None,
        ifname: str = "eth0",
        mtu: int | None = None,
        routes: Sequence[tuple[str, str]] = (),
        new: bool = False,
    ) -> None:
        """Give the task whose namespace is ``netns`` an interface ``ifname`` on ``bridge``.

        ``host_if`` is the node-side end (``task_ifname``); ``gateway`` adds a default route, ``routes``
        more ``(cidr, via)`` routes (an overlay's VIP block via the node). If the pair already exists
        (a re-adopted task) nothing is recreated: only missing pieces are added. ``new``: the namespace
        was made just now, so nothing is looked up first (see ``_attach_new``).
        """
        iface = ipaddress.IPv4Interface(address)
        br = await links.lookup(self.ipr, bridge)
        if br is None:
            raise PlumbingError(f"bridge {bridge} does not exist (ensure_bridge first)")
        if new and await self._attach_new(br, netns, host_if, iface, gateway, ifname, mtu, routes):
            return
        async with iproute(netns) as task:
            index = await links.lookup(self.ipr, host_if)
            inside = await links.lookup(task, ifname)
            if index is not None and inside is None:  # half of an old pair: start again
                await links.delete(self.ipr, host_if)
                index = None
            if index is None:
                if inside is not None:
                    raise PlumbingError(f"the task's namespace already has an interface called {ifname}")
                index = await self._new_pair(host_if, netns, ifname)
                inside = await links.lookup(task, ifname)
                if inside is None:
                    raise PlumbingError(f"{ifname} did not appear in the task's namespace {netns}")
            await links.configure(self.ipr, index, master=br, mtu=mtu)
            await self.ipr.brport("set", index=index, mode=1)  # hairpin
            await links.configure(self.ipr, index, state="up")
            await self._inside(task, inside, iface, gateway, mtu)
            for dst, via in routes:
                await links.ensure_route(task, str(ipaddress.IPv4Network(dst)), ipaddress.IPv4Address(via))

    async def _attach_new(self, br: int, netns: str, host_if: str, iface: ipaddress.IPv4Interface,
                          gateway: str | ipaddress.IPv4Address | None, ifname: str, mtu: int | None,
                          routes: Sequence[tuple[str, str]]) -> bool:
        """``attach_task`` into a namespace made just now: the pair is created with its MTU, bridge and
        state in one request and nothing is read before it is written, about half the netlink requests
        (each one holds the agent's loop, and the kernel's RTNL lock, while it runs: at 30+ tasks per
        node this was most of a stack's deploy time). False when ``host_if`` exists (a leftover): the
        caller then takes the idempotent path."""
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        sizes = {"mtu": mtu} if mtu else {}
        try:
            await self.ipr.link("add", ifname=host_if, kind="veth", master=br, state="up", **sizes,
                                peer={"ifname": ifname, "net_ns_fd": fd, **sizes})
        except NetlinkError as e:
            if e.code == errno.EEXIST:
                return False
            raise links.fail(f"cannot create veth {host_if}", e) from None
        finally:
            os.close(fd)
        index = await links.lookup(self.ipr, host_if)
        if index is None:
            raise PlumbingError(f"veth {host_if} vanished right after it was created")
        await links.configure(self.ipr, index, ifalias=f"{MARK}:task")
        await self.ipr.brport("set", index=index, mode=1)  # hairpin
        async with iproute(netns) as task:
            inside = await links.lookup(task, ifname)
            if inside is None:
                raise PlumbingError(f"{ifname} did not appear in the task's namespace {netns}")
            await links.configure(task, LOOPBACK_INDEX, state="up")
            await links.add_address(task, inside, iface)
            await links.configure(task, inside, state="up")
            if gateway is not None:
                await links.ensure_route(task, "0.0.0.0/0", ipaddress.IPv4Address(str(gateway)))
            for dst, via in routes:
                await links.ensure_route(task, str(ipaddress.IPv4Network(dst)), ipaddress.IPv4Address(via))
        return True

    async def _new_pair(self, host_if: str, netns: str, ifname: str) -> int:
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            index = await links.create(self.ipr, host_if, "veth", peer={"ifname": ifname, "net_ns_fd": fd})
        finally:
            os.close(fd)
        await links.configure(self.ipr, index, ifalias=f"{MARK}:task")
        return index

    @staticmethod
    async def _inside(task: AsyncIPRoute, index: int, iface: ipaddress.IPv4Interface,
                      gateway: str | ipaddress.IPv4Address | None, mtu: int | None) -> None:
        lo = await links.lookup(task, "lo")
        if lo is not None:
            await links.configure(task, lo, state="up")
        await links.configure(task, index, mtu=mtu)
        await links.ensure_address(task, index, iface)
        await links.configure(task, index, state="up")
        if gateway is not None:
            await links.ensure_route(task, "0.0.0.0/0", ipaddress.IPv4Address(str(gateway)))

    async def detach_task(self, host_if: str) -> bool:
        """Remove a task's veth (its peer goes with it); False when it was already gone."""
        return await links.delete(self.ipr, host_if)

    async def ensure_vxlan(
        self,
        name: str,
        vni: int,
        bridge: str,
        local: str | None = None,
        dev: str | None = None,
        port: int = VXLAN_PORT,
        mtu: int | None = None,
    ) -> int:
        """A VXLAN device ``name`` with id ``vni`` as a port of ``bridge``; recreated if its id differs.

        ``local`` is this node's underlay address (the source of the UDP packets), ``dev`` the uplink.
        Learning stays on: unknown destinations flood to the peers (``set_peers``), replies teach the
        device where each remote task's MAC lives.
        """
        index = await links.lookup(self.ipr, name)
        if index is not None:
            info = await links.link_info(self.ipr, index)
            data = info.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA")
            if links.kind_of(info) != "vxlan" or data is None or data.get("IFLA_VXLAN_ID") != vni:
                await links.delete(self.ipr, name)
                index = None
        if index is None:
            attrs: dict[str, object] = {"vxlan_id": vni, "vxlan_port": port, "vxlan_learning": True}
            if local:
                attrs["vxlan_local"] = local
            if dev:
                link = await links.lookup(self.ipr, dev)
                if link is None:
                    raise PlumbingError(f"uplink {dev} for VXLAN {name} does not exist")
                attrs["vxlan_link"] = link
            index = await links.create(self.ipr, name, "vxlan", **attrs)
        br = await links.lookup(self.ipr, bridge)
        if br is None:
            raise PlumbingError(f"bridge {bridge} does not exist (ensure_bridge first)")
        await links.configure(self.ipr, index, ifalias=f"{MARK}:vxlan", mtu=mtu, master=br)
        await links.configure(self.ipr, index, state="up")
        return index

    async def set_peers(self, vxlan: str, peers: list[str] | set[str]) -> tuple[set[str], set[str]]:
        """Make ``vxlan`` flood to exactly ``peers`` (other nodes' addresses); returns (added, removed)."""
        try:
            want = {str(ipaddress.IPv4Address(p)) for p in peers}
        except ValueError as e:
            raise PlumbingError(f"VXLAN peers of {vxlan}: {e}") from None
        index = await links.lookup(self.ipr, vxlan)
        if index is None:
            raise PlumbingError(f"VXLAN device {vxlan} does not exist (ensure_vxlan first)")
        have = await links.flood_peers(self.ipr, index)
        for peer in sorted(want - have):
            await links.set_flood_peer(self.ipr, index, peer, True)
        for peer in sorted(have - want):
            await links.set_flood_peer(self.ipr, index, peer, False)
        return want - have, have - want

    async def peers(self, vxlan: str) -> set[str]:
        """The peers ``vxlan`` floods to now."""
        index = await links.lookup(self.ipr, vxlan)
        return set() if index is None else await links.flood_peers(self.ipr, index)

    async def cleanup(self) -> list[str]:
        """Remove every device shoal added in this namespace (veths, VXLANs, bridges) and its routes to other
        nodes' subnets (``routes``); returns the devices' names and ``route <cidr>`` for each route."""
        removed = [f"route {cidr}" for cidr in await routes.remove(self.ipr)]
        for name, _kind in await links.marked(self.ipr):
            if await links.delete(self.ipr, name):
                removed.append(name)
        return removed

    async def leftovers(self) -> list[str]:
        """Names of the devices shoal added that still exist, and its routes (for checks after cleanup)."""
        return [*(name for name, _ in await links.marked(self.ipr)), *await routes.leftovers(self.ipr)]
