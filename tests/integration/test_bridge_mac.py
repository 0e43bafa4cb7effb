"""A node bridge keeps one MAC while tasks come and go, so the tasks' ARP entry for their gateway stays right.

Left to the kernel, a Linux bridge takes the lowest MAC among its ports. Task veths get random MACs, so
the gateway's MAC changed whenever a task with a lower one was wired or unwired, and every other task
kept the old MAC in its ARP cache: what it sent through the node (DNS to the node's responder, VIPs, the
world) was dropped until that entry expired, up to about a minute. This is what left DNS unanswered in
the lab e2e test after an agent restart rescheduled tasks (issue 10). Host ``h1``, tasks ``t1`` and
``t2`` and the DNS responder all live in namespaces this test made.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator

import pytest

from shoal.worker.network.dns import DnsResponder, Records
from shoal.worker.network.node import NodeNet, bridge_mac, task_ifname
from tests.integration.netkit import Kit, needs_root, sh

pytestmark = needs_root

GATEWAY = "10.210.1.1/24"
LOW_MAC = "02:00:00:00:00:01"  # lower than any MAC the kernel or shoal hands out
# one A query for "web" to the node's responder, answered within 1 s or not at all
ASK = r"""
import json, sys
import dns.exception, dns.message, dns.query
try:
    r = dns.query.udp(dns.message.make_query("web", "A"), sys.argv[1], timeout=1)
    print(json.dumps(sorted(a.to_text() for rr in r.answer for a in rr)))
except dns.exception.Timeout:
    print(json.dumps("timeout"))
"""


class Node:
    def __init__(self, kit: Kit, net: NodeNet) -> None:
        self.kit, self.net = kit, net

    def ns(self, short: str) -> str:
        return f"{self.kit.prefix}{short}"

    def mac(self, name: str = "shoal0") -> str:
        return sh("ip", "-n", self.ns("h1"), "-br", "link", "show", name).split()[2]

    async def wire(self, task: str, host: int) -> None:
        await self.net.attach_task("shoal0", self.kit.path(self.ns(task)), task_ifname(task), f"10.210.1.{host}/24",
                                   gateway="10.210.1.1")

    async def ask(self, task: str) -> object:
        """What ``task`` gets for "web" from the node's responder (off the loop: the responder runs on it)."""
        out = await asyncio.to_thread(self.kit.run, self.ns(task), sys.executable, "-c", ASK, "10.210.1.1")
        return json.loads(out)


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    kit = Kit()
    net: NodeNet | None = None
    try:
        kit.ns("h1"), kit.ns("t1"), kit.ns("t2")
        net = NodeNet(kit.path(f"{kit.prefix}h1"))
        await net.open()
        yield Node(kit, net)
    finally:
        if net is not None:
            await net.close()
        kit.close()


async def test_dns_answers_a_task_at_once_after_a_task_with_a_lower_mac_leaves_the_bridge(node: Node):
    await node.net.ensure_bridge("shoal0", GATEWAY)
    dns = DnsResponder(lambda client, name: Records(vips=("10.0.9.9",)) if name == "web" else None,
                       host="10.210.1.1", port=53, netns=node.kit.path(node.ns("h1")))
    await dns.start()
    try:
        await node.wire("t2", 3)
        node.kit.ip(node.ns("h1"), f"link set {task_ifname('t2')} address {LOW_MAC}\n")
        await node.wire("t1", 2)
        assert await node.ask("t1") == ["10.0.9.9"]  # t1 has the gateway's MAC in its ARP cache now
        await node.net.detach_task(task_ifname("t2"))
        assert await node.ask("t1") == ["10.0.9.9"], "t1's packets to its gateway are dropped"
        assert node.mac() == bridge_mac(GATEWAY)
    finally:
        await dns.close()


async def test_the_bridge_mac_survives_an_agent_restart_and_an_older_bridge_takes_it_once(node: Node):
    # a bridge an older agent made (the kernel's MAC), with a port of a low MAC: ensure_bridge gives it its own
    node.kit.ip(node.ns("h1"), "link add shoal0 type bridge\nlink set shoal0 up\n")
    await node.wire("t1", 2)
    node.kit.ip(node.ns("h1"), f"link set {task_ifname('t1')} address {LOW_MAC}\n")
    assert node.mac() == LOW_MAC
    await node.net.ensure_bridge("shoal0", GATEWAY)
    assert node.mac() == bridge_mac(GATEWAY)
    restarted = NodeNet(node.kit.path(node.ns("h1")))
    await restarted.open()
    try:
        await restarted.ensure_bridge("shoal0", GATEWAY)
        assert node.mac() == bridge_mac(GATEWAY)
    finally:
        await restarted.close()
    await node.wire("t2", 3)
    await node.net.detach_task(task_ifname("t1"))
    assert node.mac() == bridge_mac(GATEWAY)
    assert bridge_mac("10.220.0.251/24") == "02:53:0a:dc:00:fb", "locally administered, the address's 4 bytes"
