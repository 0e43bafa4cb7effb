"""A task that served through the routing mesh gets its stop only once every node's mesh dropped it.

Two nodes balance a published service; its task runs on n1. When the task is asked to stop, n1 (its
node) must not be told before n2 has loaded a mesh without it: n2 would otherwise keep sending it new
connections while its container goes away (refused requests during a rolling update)."""

from __future__ import annotations

import asyncio
import time

import pytest

from shoal.manager.dispatcher import drain
from shoal.manager.dispatcher.drain import MeshState, behind
from shoal.manager.store import objects
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from tests.fixtures.dispatcher import Harness, SessionStream

SPEC = pb.ServiceSpec(name="web", ports=[pb.PortConfig(target_port=80, published_port=8080)])


@pytest.fixture
async def h():
    async with Harness(heartbeat_period=2.0) as harness:  # no node is counted out during a test
        for node, n in (("n1", 1), ("n2", 2)):
            await harness.add_node(node)
            await harness.writer.apply(objects.nodenets.put(pb.NodeNetworkInfo(subnet=f"10.210.{n}.0/24", underlay=f"192.168.0.{n}"), node))
        await harness.writer.apply(objects.services.create(pb.Service(id="s1", spec=SPEC)))
        await harness.put_task("t1", "n1", spec=SPEC)
        await harness.writer.apply(objects.addresses.put(pb.TaskAddresses(task_id="t1", node_id="n1", bridge_address="10.210.1.9/24")))
        await harness.report("t1", pb.RUNNING)
        yield harness


def serving(msg: dpb.SessionMessage) -> list[str] | None:
    """The tasks the map in ``msg`` lists for the service (None: no word about it)."""
    svc = [s for s in msg.network_map.services if s.id == "s1"]
    return [t.id for t in svc[0].tasks] if svc else None


async def messages(s: SessionStream, seconds: float, ack: bool = True) -> list[dpb.SessionMessage]:
    """What ``s`` receives within ``seconds``; with ``ack`` the node loads each map at once and says so."""
    out: list[dpb.SessionMessage] = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        try:
            msg = await s.next(timeout=left)
        except TimeoutError:
            break
        out.append(msg)
        if ack and msg.HasField("network_map"):
            s.requests.send(dpb.SessionRequest(mesh_revision=msg.network_map.revision))
    return out


def stop_sent(msgs: list[dpb.SessionMessage]) -> bool:
    return any(t.id == "t1" and t.desired_state == pb.SHUTDOWN for m in msgs for t in m.assignments.updated)


async def stop_t1(h: Harness) -> None:
    await h.put_task("t1", "n1", state=pb.RUNNING, desired=pb.SHUTDOWN, spec=SPEC, meta=pb.Meta(updated_at_ns=time.time_ns()))


async def test_the_stop_waits_until_every_node_loaded_a_mesh_without_the_task(h: Harness):
    n1, n2 = h.open("n1"), h.open("n2")
    first = await messages(n1, 0.2) + await messages(n2, 0.2)
    assert any(serving(m) == ["t1"] for m in first), "both nodes balance the task at first"
    await stop_t1(h)
    slow = await messages(n2, 0.2, ack=False)  # n2's map drops the task; its nftables has not loaded it yet
    assert any(serving(m) == [] for m in slow)
    assert not stop_sent(await messages(n1, 0.5)), "n1 was told to stop the task while n2 still balanced it"
    n2.requests.send(dpb.SessionRequest(mesh_revision=slow[-1].network_map.revision))  # n2 loaded it
    assert stop_sent(await messages(n1, 1.0)), "the stop goes once every node's mesh dropped the task"


async def test_a_node_whose_map_keeps_changing_releases_the_stop_with_the_first_map_it_loaded_without_the_task(h: Harness):
    n1, n2 = h.open("n1"), h.open("n2")
    await messages(n1, 0.2)
    await messages(n2, 0.2)
    await stop_t1(h)
    without = [m for m in await messages(n2, 0.2, ack=False) if m.HasField("network_map")][-1]
    await h.put_task("t2", "n2", spec=SPEC)  # a rolling update goes on: a replacement starts serving
    await h.writer.apply(objects.addresses.put(pb.TaskAddresses(task_id="t2", node_id="n2", bridge_address="10.210.2.9/24")))
    await h.report("t2", pb.RUNNING)
    assert any(serving(m) == ["t2"] for m in await messages(n2, 0.2, ack=False)), "n2 is sent a newer map"
    n2.requests.send(dpb.SessionRequest(mesh_revision=without.network_map.revision))  # it loaded the older one only
    assert stop_sent(await messages(n1, 1.0)), "the map n2 loaded no longer has the task: the stop goes"


async def test_a_node_that_never_reported_a_mesh_is_not_waited_for(h: Harness):
    n1, n2 = h.open("n1"), h.open("n2")
    await messages(n1, 0.2)
    await messages(n2, 0.2, ack=False)  # an agent without networking (or an older one) never says
    await stop_t1(h)
    assert stop_sent(await messages(n1, 0.5))


async def test_a_node_that_never_loads_the_mesh_holds_the_stop_only_until_the_drain_wait(h: Harness, monkeypatch):
    monkeypatch.setattr(drain, "DRAIN_WAIT_S", 0.6)
    n1, n2 = h.open("n1"), h.open("n2")
    await messages(n1, 0.2)
    await messages(n2, 0.2)
    await stop_t1(h)
    asked = time.monotonic()
    late = asyncio.ensure_future(messages(n2, 2.0, ack=False))  # n2's nftables refuses every mesh from now on
    waited = None
    while waited is None and time.monotonic() - asked < 2.0:
        if stop_sent(await messages(n1, 0.05)):
            waited = time.monotonic() - asked
    late.cancel()
    assert waited is not None and 0.5 <= waited < 1.2, f"the stop went {waited} s after it was asked (0.6 s wait)"


def task(desired: int = pb.SHUTDOWN, spec: pb.ServiceSpec = SPEC, asked_ns: int | None = None) -> pb.Task:
    t = pb.Task(id="t1", desired_state=desired, spec=spec)  # type: ignore[arg-type]
    t.meta.updated_at_ns = time.time_ns() if asked_ns is None else asked_ns
    return t


def test_only_a_running_task_in_some_mesh_waits_and_only_for_nodes_behind_its_revision():
    now = time.time_ns()
    nodes = {"a": MeshState(acked=7, synced=10), "b": MeshState(acked=5, synced=6), "c": MeshState()}
    assert behind(task(), pb.RUNNING, 8, now, nodes) == ["b"]  # "c" never reported a mesh
    assert behind(task(), pb.RUNNING, 6, now, nodes) == []
    assert behind(task(desired=pb.RUNNING), pb.RUNNING, 8, now, nodes) == []  # no stop asked
    assert behind(task(), pb.STARTING, 8, now, nodes) == []  # never served: out of every mesh
    assert behind(task(spec=pb.ServiceSpec(name="batch")), pb.RUNNING, 8, now, nodes) == []  # no port, no network
    on_net = pb.ServiceSpec(name="db", networks=[pb.NetworkAttachmentConfig(target="net")])
    assert behind(task(spec=on_net), pb.RUNNING, 8, now, nodes) == ["b"]  # balanced on its VIP
    assert behind(task(asked_ns=now - int(drain.DRAIN_WAIT_S * 1e9)), pb.RUNNING, 8, now, nodes) == []  # waited enough


def test_a_nodes_mesh_is_current_at_the_map_it_loaded_and_later_while_its_map_stays_the_same():
    m = MeshState()
    m.map_sent(10)
    assert not m.unchanged(12) and m.synced == 0  # the map of 10 is not loaded yet
    assert m.ack(10) and not m.ack(9) and m.synced == 10
    assert m.unchanged(12) and m.synced == 12  # nothing new for it since: current at 12 too
    assert not m.unchanged(11)  # never backwards
    m.map_sent(15)
    assert not m.unchanged(16) and m.synced == 12
    m.map_sent(18)  # maps keep coming (a rolling update): each loaded one still counts
    assert m.ack(15) and m.synced == 15
    assert not m.unchanged(19) and m.synced == 15  # the map of 18 is not loaded yet


def test_a_held_stop_is_released_once_every_node_that_reported_a_mesh_is_current_at_its_revision():
    assert drain.released(8, [MeshState(acked=8, synced=9), MeshState()])  # the second never reported one
    assert not drain.released(8, [MeshState(acked=8, synced=9), MeshState(acked=5, synced=7)])
    assert drain.released(8, [])
