"""The network map on the session stream, as an agent receives it: full first, then increments, and a
task held back from its node until the allocator recorded its addresses."""

from __future__ import annotations

import pytest

from shoal.manager.store import objects
from shoal.proto import types_pb2 as pb
from tests.fixtures.dispatcher import Harness

SPEC = pb.ServiceSpec(name="web", networks=[pb.NetworkAttachmentConfig(target="net-web")])


@pytest.fixture
async def h():
    async with Harness(heartbeat_period=0.5) as harness:
        await harness.add_node("n1")
        await harness.add_node("n2")
        w = harness.writer
        await w.apply(objects.networks.create(pb.Network(id="net-web", spec=pb.NetworkSpec(name="web"), vxlan_id=4097, subnet="10.210.2.0/24")))
        await w.apply(objects.services.create(pb.Service(id="s1", spec=SPEC)))
        for node, n in (("n1", 1), ("n2", 2)):
            info = pb.NodeNetworkInfo(subnet=f"10.210.{10 + n}.0/24", underlay=f"192.168.0.{n}")
            info.overlays.add(network_id="net-web", network="web", address=f"10.210.2.{n + 1}/24")
            await w.apply(objects.nodenets.put(info, node))
        await harness.settle()
        yield harness


async def addresses(h: Harness, tid: str, node: str, addr: str) -> None:
    rec = pb.TaskAddresses(task_id=tid, node_id=node, bridge_address=f"10.210.11.{addr}/24")
    rec.networks.add(network_id="net-web", network="web", address=f"10.210.2.{addr}/24")
    await h.writer.apply(objects.addresses.put(rec))
    await h.settle()


async def test_the_first_message_carries_the_whole_map(h: Harness):
    s = h.open("n1")
    msg = await s.next()
    m = msg.network_map
    assert m.full and m.node.underlay == "192.168.0.1"
    assert [(n.name, list(n.peers), n.node_address) for n in m.networks] == [("web", ["192.168.0.2"], "10.210.2.2/24")]
    assert [sv.name for sv in m.services] == ["web"] and list(m.services[0].tasks) == []
    await s.close()


async def test_a_task_waits_for_its_addresses_then_comes_with_them_and_serves_once_running(h: Harness):
    s = h.open("n1")
    await s.next()
    await h.put_task("t1", "n1", spec=SPEC)
    assert await s.quiet(), "no addresses recorded yet: the node is not told about the task"
    await addresses(h, "t1", "n1", "9")
    msg = await s.next()
    assert [(t.id, t.bridge_address, [a.address for a in t.networks]) for t in msg.assignments.updated] == [
        ("t1", "10.210.11.9/24", ["10.210.2.9/24"])]
    await h.report("t1", pb.RUNNING)
    msg = await s.next()
    while not msg.HasField("network_map"):  # the status also changes the assignment; the map may come apart
        msg = await s.next()
    m = msg.network_map
    assert not m.full and [sv.name for sv in m.services] == ["web"]
    assert [(t.id, t.bridge_address) for t in m.services[0].tasks] == [("t1", "10.210.11.9/24")]
    await s.close()


async def test_other_nodes_see_a_remote_task_without_its_bridge_address_and_lose_it_when_it_stops(h: Harness):
    await h.put_task("t1", "n1", spec=SPEC)
    await addresses(h, "t1", "n1", "9")
    await h.report("t1", pb.RUNNING)
    s = h.open("n2")
    m = (await s.next()).network_map
    assert [(t.id, t.node_id, t.bridge_address) for t in m.services[0].tasks] == [("t1", "n1", "")]
    await h.put_task("t1", "n1", state=pb.RUNNING, desired=pb.SHUTDOWN, spec=SPEC)  # being stopped: no new connections
    msg = await s.next()
    assert [sv.name for sv in msg.network_map.services] == ["web"] and list(msg.network_map.services[0].tasks) == []
    await s.close()


async def test_a_task_of_a_service_on_no_network_is_sent_once_its_bridge_address_is_recorded(h: Harness):
    """Its addresses concern no other node's map, but its own node waits for them (a 3-manager lab's tasks
    stayed ASSIGNED: nothing woke the node's session when the allocator recorded them)."""
    plain = pb.ServiceSpec(name="plain")
    await h.writer.apply(objects.services.create(pb.Service(id="s2", spec=plain)))
    s = h.open("n1")
    await s.next()
    t = pb.Task(id="t2", service_id="s2", service_name="plain", node_id="n1", desired_state=pb.RUNNING, spec=plain)
    t.status.state = pb.ASSIGNED
    await h.writer.apply(objects.tasks.create(t))
    await h.settle()
    assert await s.quiet(), "no addresses recorded yet: the node is not told about the task"
    rec = pb.TaskAddresses(task_id="t2", node_id="n1", bridge_address="10.210.11.7/24")
    await h.writer.apply(objects.addresses.put(rec))
    await h.settle()
    msg = await s.next()
    assert [(t.id, t.bridge_address) for t in msg.assignments.updated] == [("t2", "10.210.11.7/24")]
    await s.close()
