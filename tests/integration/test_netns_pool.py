"""The pool of pre-wired task namespaces on a namespace host: what a task gets from it, and what it leaves.

A host namespace ``h1`` gets the node plumbing (task bridge and one overlay ``web``) and a ``TaskWiring``
with a pool of 2 namespaces per shape. A task taken from the pool must look exactly like one wired the
slow way (interface names inside, addresses, routes, bridge ports), but for its node-side veths' names,
which it keeps from the pool and its wiring record lists; and the pool must leave nothing behind: not
when the node stops, not after an agent that crashed comes back, not when the node's spec drops a
network its entries were made for.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from shoal.proto import types_pb2 as pb
from shoal.worker.network.node import task_ifname
from shoal.worker.network.pool import NetnsPool
from shoal.worker.network.prewire import POOL_PREFIX
from shoal.worker.network.topology import NodeNetwork, NodeSpec, OverlaySpec
from shoal.worker.tasknet import TaskWiring
from tests.integration.netkit import Kit, needs_root

pytestmark = needs_root

WEB = OverlaySpec(name="web", vni=4242, subnet="10.212.0.0/24", node_address="10.212.0.250/24", vip_block="10.212.8.0/24")
REACH = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], 9), timeout=3)
except ConnectionRefusedError:
    print("refused")  # an answer (RST) came back: the address is reachable
except OSError as e:
    print(e)
"""
SPEC = NodeSpec(gateway="10.211.1.1/24", underlay="192.168.97.1", overlays=(WEB,))


@dataclass
class Node:
    kit: Kit
    host: str
    tmp: Path
    plumbing: NodeNetwork
    pool: NetnsPool
    wiring: TaskWiring
    filler: asyncio.Task

    def links(self) -> list[dict]:
        return json.loads(self.kit.run(self.host, "ip", "-j", "-d", "link", "show"))

    def names(self) -> set[str]:
        return {link["ifname"] for link in self.links()}

    def inside(self, task_id: str, *argv: str) -> str:
        return self.kit.run(self.host, "nsenter", f"--net={self.wiring.netns_path(task_id)}", *argv)

    def veths(self, task_id: str) -> dict[str, str]:
        """The task's node-side veth names by network, as its wiring record says (else ``task_ifname``'s)."""
        return self.wiring.host_names(task_id) or {net: task_ifname(task_id, net) for net in ("", "web")}


async def until(check: Callable[[], bool], within: float = 10.0) -> bool:
    for _ in range(int(within / 0.05)):
        if check():
            return True
        await asyncio.sleep(0.05)
    return check()


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    kit = Kit()
    plumbing: NodeNetwork | None = None
    pool: NetnsPool | None = None
    filler: asyncio.Task | None = None
    wiring: TaskWiring | None = None
    try:
        host = kit.ns("h1")
        plumbing = NodeNetwork(kit.path(host))
        await plumbing.open()
        await plumbing.ensure(SPEC)
        pool = NetnsPool(tmp_path / "net-pool", kit.path(host), size=2)
        filler = asyncio.ensure_future(pool.run())
        wiring = TaskWiring(tmp_path / "net", plumbing, pool)
        yield Node(kit, host, tmp_path, plumbing, pool, wiring, filler)
    finally:
        if wiring is not None:
            await wiring.sweep(set())
        if filler is not None:
            filler.cancel()
            await asyncio.gather(filler, return_exceptions=True)
        if pool is not None:
            await pool.close()
        if plumbing is not None:
            await plumbing.cleanup()
            await plumbing.close()
            await plumbing.side.close()
        kit.close()


def task(tid: str, host: int, web: bool = True) -> pb.Task:
    t = pb.Task(id=tid, bridge_address=f"10.211.1.{host}/24")
    if web:
        t.networks.add(network_id="id-web", network="web", address=f"10.212.0.{host}/24")
    return t


def shape(node: Node, task_id: str) -> dict:
    """What a wired task looks like, minus what differs between any two tasks (indexes, MACs)."""
    def port(name: str) -> dict:
        link = next(link for link in node.links() if link["ifname"] == name)
        return {"master": link.get("master"), "mtu": link["mtu"], "up": "UP" in link["flags"],
                "hairpin": link.get("linkinfo", {}).get("info_slave_data", {}).get("hairpin"),
                "alias": link.get("ifalias")}

    addrs = json.loads(node.inside(task_id, "ip", "-j", "-4", "addr", "show"))
    routes = json.loads(node.inside(task_id, "ip", "-j", "-4", "route", "show"))
    veths = node.veths(task_id)
    return {
        "eth0": port(veths[""]),
        "eth1": port(veths["web"]),
        "inside": sorted((a["ifname"], a["mtu"], "UP" in a["flags"], [i["prefixlen"] for i in a["addr_info"]]) for a in addrs),
        "routes": sorted((r["dst"], r.get("gateway", ""), r["dev"]) for r in routes),
    }


async def test_a_task_from_the_pool_is_wired_as_one_wired_the_slow_way(node: Node) -> None:
    await node.wiring.wire(task("slow", 5), SPEC)  # the pool had nothing of this shape yet
    assert await until(lambda: node.pool.count() == 2)  # it made two for the next ones
    assert sum(n.startswith(POOL_PREFIX) for n in node.names()) == 4  # two interfaces each
    await node.wiring.wire(task("fast", 6), SPEC)
    assert node.pool.count() in (1, 2)  # one was taken (and perhaps already made again)
    fast = node.veths("fast")
    assert sorted(fast) == ["", "web"] and all(n.startswith(POOL_PREFIX) for n in fast.values())  # not renamed
    assert node.wiring.host_names("slow") == {}  # the slow way: task_ifname's names, no record needed
    assert shape(node, "fast") == shape(node, "slow")
    assert "10.211.1.6/24" in node.inside("fast", "ip", "-o", "-4", "addr", "show", "eth0")
    assert "10.212.0.6/24" in node.inside("fast", "ip", "-o", "-4", "addr", "show", "eth1")
    assert node.inside("fast", sys.executable, "-c", REACH, "10.211.1.5") == "refused\n"  # the slow one answers
    await node.wiring.unwire("fast", emptied=True)
    assert await until(lambda: not set(fast.values()) & node.names())


async def test_the_taken_namespace_leaves_the_pool_dir_and_a_rewire_finds_its_interfaces(node: Node) -> None:
    await node.wiring.wire(task("a", 5), SPEC)
    assert await until(lambda: node.pool.count() == 2)
    (ready,) = node.pool.ready.values()
    taken = ready[0].id  # the next one out
    await node.wiring.wire(task("b", 6), SPEC)
    assert taken not in os.listdir(node.pool.dir)
    assert os.path.exists(node.wiring.netns_path("b"))
    claimed = set(node.veths("b").values())

    def names() -> set[str]:  # (the pool may be refilling)
        return {n for n in node.names() if not n.startswith(POOL_PREFIX) or n in claimed}

    before = names()
    assert claimed <= before
    fresh = TaskWiring(node.wiring.dir, node.plumbing, None)  # an agent restarted: it reads the record
    assert await fresh.rewire(task("b", 6), SPEC)  # nothing is made again
    assert names() == before
    await fresh.unwire("b")  # its namespace is still bound (nothing ran in it): the veths go by their names
    assert not claimed & node.names()


async def test_closing_the_pool_leaves_no_namespace_mount_or_link(node: Node) -> None:
    await node.wiring.wire(task("a", 5), SPEC)
    assert await until(lambda: node.pool.count() == 2)
    node.filler.cancel()
    await asyncio.gather(node.filler, return_exceptions=True)
    await node.pool.close()
    assert not any(n.startswith(POOL_PREFIX) for n in node.names())  # at once, not when the kernel gets to it
    assert not node.pool.dir.exists()
    assert str(node.pool.dir) not in Path("/proc/self/mountinfo").read_text()
    assert task_ifname("a") in node.names()  # a task's own interfaces are not the pool's


async def test_an_agent_that_crashed_finds_the_earlier_pool_and_removes_it(node: Node) -> None:
    await node.wiring.wire(task("a", 5), SPEC)
    assert await until(lambda: node.pool.count() == 2)
    node.filler.cancel()  # the agent dies: nothing is closed
    await asyncio.gather(node.filler, return_exceptions=True)
    await node.pool.side.close()
    again = NetnsPool(node.pool.dir, node.pool.netns, size=2)
    runner = asyncio.ensure_future(again.run())
    try:
        assert await until(lambda: not node.pool.dir.exists())
        assert await until(lambda: not any(n.startswith(POOL_PREFIX) for n in node.names()))
        assert str(node.pool.dir) not in Path("/proc/self/mountinfo").read_text()
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await again.close()
    node.pool.ready.clear()  # (its entries are gone with the directory)


async def test_a_spec_without_the_network_drops_the_shapes_made_for_it(node: Node) -> None:
    await node.wiring.wire(task("a", 5), SPEC)
    await node.wiring.wire(task("n", 7, web=False), SPEC)
    assert await until(lambda: node.pool.count() == 4)
    plain = NodeSpec(gateway=SPEC.gateway, underlay=SPEC.underlay)
    node.pool.retain(plain)
    await node.plumbing.ensure(plain)
    assert await until(lambda: node.pool.count() == 2 and len(os.listdir(node.pool.dir)) == 2)
    await node.wiring.wire(task("m", 8, web=False), SPEC)  # the shape without networks is still served
    assert "10.211.1.8/24" in node.inside("m", "ip", "-o", "-4", "addr", "show", "eth0")
