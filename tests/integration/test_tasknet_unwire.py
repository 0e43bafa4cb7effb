"""A task's interfaces when it is unwired, on a namespace host: with the namespace, or at once.

A task whose container was deleted (``emptied``) is unwired by removing its namespace only: the kernel
then removes its veth pair itself, shortly after, and the agent never waits for it. A task that may
still have a process in its namespace (a container not deleted) loses its interfaces at once, even
though its namespace lives on. A wiring that fails, or whose ``alongside`` (the container's create) fails,
is undone.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shoal.proto import types_pb2 as pb
from shoal.worker.network.links import PlumbingError
from shoal.worker.network.node import task_ifname
from shoal.worker.network.topology import NodeNetwork, NodeSpec
from shoal.worker.tasknet import TaskWiring, Wiring
from tests.integration.netkit import Kit, needs_root

pytestmark = needs_root

SPEC = NodeSpec(gateway="10.211.1.1/24", underlay="192.168.97.1")


@dataclass
class Node:
    kit: Kit
    host: str
    wiring: TaskWiring

    def links(self) -> list[str]:
        return self.kit.run(self.host, "ls", "/sys/class/net").split()


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    kit = Kit()
    plumbing: NodeNetwork | None = None
    try:
        host = kit.ns("h1")
        plumbing = NodeNetwork(kit.path(host))
        await plumbing.open()
        await plumbing.ensure(SPEC)
        yield Node(kit, host, TaskWiring(tmp_path / "net", plumbing))
    finally:
        if plumbing is not None:
            await plumbing.cleanup()
            await plumbing.close()
        kit.close()


def _task(tid: str, host: int) -> pb.Task:
    return pb.Task(id=tid, bridge_address=f"10.211.1.{host}/24")


async def _gone(node: Node, ifname: str, within: float = 5.0) -> bool:
    for _ in range(int(within / 0.05)):
        if ifname not in node.links():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_an_emptied_namespace_takes_its_veth_with_it(node: Node) -> None:
    await node.wiring.wire(_task("t1", 5), SPEC)
    assert task_ifname("t1") in node.links()
    await node.wiring.unwire("t1", emptied=True)
    assert node.wiring.wired() == [] and not node.wiring.path("t1").exists()
    assert await _gone(node, task_ifname("t1"))  # the kernel's namespace cleanup removed the pair


async def test_a_namespace_still_in_use_loses_its_interfaces_at_once(node: Node) -> None:
    await node.wiring.wire(_task("t2", 6), SPEC)
    holder = subprocess.Popen(["nsenter", f"--net={node.wiring.netns_path('t2')}", "sleep", "30"])
    try:
        await asyncio.sleep(0.2)  # nsenter has joined the namespace: it outlives the bind mount
        await node.wiring.unwire("t2")
        assert task_ifname("t2") not in node.links()  # not left to a namespace that lives on
    finally:
        holder.kill()
        holder.wait()


async def test_a_task_wired_again_after_an_emptied_unwire_gets_its_interface(node: Node) -> None:
    await node.wiring.wire(_task("t3", 7), SPEC)
    await node.wiring.unwire("t3", emptied=True)
    await node.wiring.wire(_task("t3", 7), SPEC)  # the old pair may not be gone yet: it is replaced
    out = subprocess.run(["nsenter", f"--net={node.wiring.netns_path('t3')}", "ip", "-o", "-4", "addr", "show", "eth0"],
                         capture_output=True, text=True, check=True).stdout
    assert "10.211.1.7/24" in out
    await node.wiring.unwire("t3", emptied=True)


async def test_what_runs_alongside_the_wiring_finds_the_record_and_its_failure_undoes_the_wiring(node: Node) -> None:
    seen: list[str] = []

    async def create(wiring: Wiring) -> None:  # as the executor's container create: needs the resolv.conf to bind
        seen.append(wiring.mounts[0]["source"])
        assert os.path.exists(wiring.mounts[0]["source"])
        raise RuntimeError("image not found")

    with pytest.raises(RuntimeError, match="image not found"):
        await node.wiring.wire(_task("t4", 8), SPEC, alongside=create)
    assert seen and node.wiring.wired() == []
    assert await _gone(node, task_ifname("t4"))


async def test_a_wiring_that_fails_after_its_alongside_succeeded_is_undone_and_raised(node: Node) -> None:
    created: list[str] = []

    async def create(wiring: Wiring) -> None:
        created.append(wiring.netns_path)

    t = _task("t5", 9)
    t.networks.add(network_id="id-nope", network="nope", address="10.250.0.9/24")  # not on this node
    with pytest.raises(PlumbingError, match="'nope' is not on this node"):
        await node.wiring.wire(t, SPEC, alongside=create)
    assert created == [node.wiring.netns_path("t5")]  # (the caller deletes what it made)
    assert node.wiring.wired() == [] and not os.path.exists(created[0])
