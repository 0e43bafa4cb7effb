"""A task's interfaces made before the task exists, and handed to it when it comes.

Wiring a task from nothing costs a new network namespace and, per interface, a veth pair made across
two namespaces, then its bridge port, alias, hairpin and state: the two kinds of request the kernel is
slowest at (each registers devices under the RTNL lock, and a new namespace runs every subsystem's
setup), and, during a rolling update, a third of each replacement's time on its node. ``prewire`` does
all of that ahead, in a namespace of the pool (pool.py), for interfaces whose layout is known but whose
addresses are not: the ports (``TaskPort``) a task on the same networks will have. ``claim`` then gives
the namespace to the task: its bind mount moves to the task's path and the addresses and routes are
added inside. The node-side veths keep the names they were made with (``pool_ifname``) for the task's
whole life: renaming a link waits, holding the kernel's RTNL lock, for an RCU grace period, and two
renames were the largest part of a claim on a loaded node. The task's wiring record says which names
are its (``tasknet``), so rewiring after an agent restart, ``detach`` and ``cleanup`` find them. Until it
is claimed a pooled interface has no address: it is a bridge port nothing can reach through.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
from dataclasses import dataclass

from pyroute2.netlink.exceptions import NetlinkError

from shoal.worker.network import links, netns
from shoal.worker.network.links import MARK, PlumbingError
from shoal.worker.network.node import NodeNet

LOOPBACK_INDEX = 1
POOL_PREFIX = "shp"  # the node-side name of a veth made ahead (kept once a task claims it)


@dataclass(frozen=True)
class TaskPort:
    """One interface of a task: the bridge its veth is a port of, its name and MTU inside, its routes."""

    network: str  # "": the node bridge
    bridge: str
    ifname: str
    mtu: int
    gateway: str | None = None  # the default route's next hop
    routes: tuple[tuple[str, str], ...] = ()  # more (cidr, via)


Ports = tuple[TaskPort, ...]


@dataclass(frozen=True)
class Prewired:
    """A namespace of the pool: where it is bound, what it is wired for, its interfaces' indexes."""

    id: str
    path: str
    ports: Ports
    host_index: tuple[int, ...]  # the node-side veths, in ``ports`` order
    inside_index: tuple[int, ...]  # their peers inside


def pool_ifname(entry_id: str, network: str) -> str:
    """The node-side name of a pooled interface, and of its task's once claimed (at most 15 characters)."""
    return POOL_PREFIX + hashlib.sha256(f"{entry_id}/{network}".encode()).hexdigest()[:11]


async def prewire(net: NodeNet, entry_id: str, path: str, ports: Ports) -> Prewired:
    """Give the empty namespace at ``path`` one interface per port, up, without addresses."""
    host, inside = [], []
    async with netns.iproute(path) as task:
        await links.configure(task, LOOPBACK_INDEX, state="up")
        for port in ports:
            name = pool_ifname(entry_id, port.network)
            br = await links.lookup(net.ipr, port.bridge)
            if br is None:
                raise PlumbingError(f"bridge {port.bridge} does not exist (ensure the node first)")
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                await net.ipr.link("add", ifname=name, kind="veth", master=br, state="up", mtu=port.mtu,
                                   peer={"ifname": port.ifname, "net_ns_fd": fd, "mtu": port.mtu})
            except NetlinkError as e:
                raise links.fail(f"cannot create veth {name}", e) from None
            finally:
                os.close(fd)
            index = await links.lookup(net.ipr, name)
            peer = await links.lookup(task, port.ifname)
            if index is None or peer is None:
                raise PlumbingError(f"veth {name} vanished right after it was created")
            await links.configure(net.ipr, index, ifalias=f"{MARK}:task")
            await net.ipr.brport("set", index=index, mode=1)  # hairpin
            await links.configure(task, peer, state="up")
            host.append(index)
            inside.append(peer)
    return Prewired(entry_id, path, ports, tuple(host), tuple(inside))


def move(entry: Prewired, path: str) -> bool:
    """Bind the entry's namespace at ``path`` and drop its place in the pool; False when it cannot be bound
    (then it is dropped all the same: its interfaces go with it)."""
    try:
        netns.bind(entry.path, path)
    except OSError:
        bound = False
    else:
        bound = True
    with contextlib.suppress(OSError):
        netns.remove(entry.path)
        os.rmdir(os.path.dirname(entry.path))
    return bound


def host_names(entry: Prewired) -> dict[str, str]:
    """The node-side veth names of the entry's interfaces, by network ("": the node bridge)."""
    return {port.network: pool_ifname(entry.id, port.network) for port in entry.ports}


async def claim(entry: Prewired, path: str, addresses: list[str]) -> None:
    """Make the pooled interfaces (already moved to ``path``) the task's: ``addresses`` in ``entry.ports``
    order, and the routes. The node-side veths keep their names (``host_names``; see the module docstring)."""
    async with netns.iproute(path) as task:
        for port, index, address in zip(entry.ports, entry.inside_index, addresses, strict=True):
            await links.add_address(task, index, ipaddress.IPv4Interface(address))
            if port.gateway is not None:
                await links.ensure_route(task, "0.0.0.0/0", ipaddress.IPv4Address(port.gateway))
            for dst, via in port.routes:
                await links.ensure_route(task, str(ipaddress.IPv4Network(dst)), ipaddress.IPv4Address(via))


async def unplug(net: NodeNet, entry: Prewired) -> None:
    """Delete the entry's node-side veths now (their peers go with them), tolerating ones already gone."""
    for port in entry.ports:
        await links.delete(net.ipr, pool_ifname(entry.id, port.network))
