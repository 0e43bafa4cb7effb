"""The control API on the in-memory store: its writes go through the typed store API, its reads see them.

What a CLI user depends on: a name is taken once, an update made on an old read is refused, a client
reads what it just wrote, and the rules about removing and demoting nodes.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from shoal.manager.cache import ClusterCache
from shoal.manager.controlapi import ControlAPI
from shoal.manager.store import keys, objects
from shoal.manager.store.base import StoreError
from shoal.manager.store.memory import MemoryStore
from shoal.manager.store.writes import Writer
from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb
from tests.fixtures.dispatcher import Aborted, FakeContext

CTX = FakeContext(peer="unix:/run/shoal/manager.sock")


def spec(name: str = "web", replicas: int = 2) -> pb.ServiceSpec:
    s = pb.ServiceSpec(name=name, replicas=replicas)
    s.container.image = "host"
    s.container.args.extend(["sleep", "1000"])
    return s


@pytest.fixture
async def api():
    store = MemoryStore()
    cache = ClusterCache(store)
    follow = asyncio.create_task(cache.run())
    await asyncio.wait_for(cache.ready.wait(), 2)
    yield ControlAPI(store, cache, lambda: "m1", lambda: pb.Cluster(id="c1"), unknown_window_s=0)
    follow.cancel()
    await store.close()


async def create(api: ControlAPI, name: str = "web") -> pb.Service:
    return (await api.CreateService(cpb.CreateServiceRequest(spec=spec(name)), CTX)).service


async def test_a_created_service_is_readable_at_once_with_its_version(api: ControlAPI):
    svc = await create(api)
    listed = (await api.ListServices(cpb.ListServicesRequest(), CTX)).services
    assert [s.id for s in listed] == [svc.id], "the caller reads what it just wrote"
    assert svc.meta.version == api.cache.rev("service", svc.id) > 0
    got = (await api.GetService(cpb.GetServiceRequest(service_id="web"), CTX)).service
    assert got.id == svc.id and got.spec.replicas == 2


async def test_a_name_is_taken_once(api: ControlAPI):
    await create(api)
    with pytest.raises(Aborted) as err:
        await create(api)
    assert err.value.code == grpc.StatusCode.ALREADY_EXISTS and "web" in err.value.details
    assert len(await objects.services.list(api.store)) == 1


async def test_an_invalid_spec_is_refused_before_anything_is_written(api: ControlAPI):
    bad = spec()
    bad.replicas = -1
    with pytest.raises(Aborted) as err:
        await api.CreateService(cpb.CreateServiceRequest(spec=bad), CTX)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert api.store.snapshot() == {}


async def test_an_update_made_on_an_old_read_is_refused(api: ControlAPI):
    svc = await create(api)
    newer = spec(replicas=3)
    up = await api.UpdateService(cpb.UpdateServiceRequest(service_id=svc.id, version=svc.meta.version, spec=newer), CTX)
    assert up.service.spec.replicas == 3 and up.service.spec_version == 2
    assert up.service.previous_spec.replicas == 2
    with pytest.raises(Aborted) as err:
        await api.UpdateService(cpb.UpdateServiceRequest(service_id=svc.id, version=svc.meta.version, spec=spec(replicas=5)), CTX)
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION and "read it again" in err.value.details
    assert (await objects.services.get(api.store, svc.id)).obj.spec.replicas == 3


async def test_a_service_cannot_be_renamed(api: ControlAPI):
    svc = await create(api)
    with pytest.raises(Aborted) as err:
        await api.UpdateService(cpb.UpdateServiceRequest(service_id=svc.id, version=svc.meta.version, spec=spec("www")), CTX)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "renamed" in err.value.details
    assert await api.store.get(keys.service_name_key("www")) is None


async def test_removing_a_service_frees_its_name(api: ControlAPI):
    await create(api)
    await api.RemoveService(cpb.RemoveServiceRequest(service_id="web"), CTX)
    assert (await api.ListServices(cpb.ListServicesRequest(), CTX)).services == []
    assert (await create(api)).spec.name == "web"


async def test_an_unknown_service_is_not_found(api: ControlAPI):
    with pytest.raises(Aborted) as err:
        await api.GetService(cpb.GetServiceRequest(service_id="nope"), CTX)
    assert err.value.code == grpc.StatusCode.NOT_FOUND


async def test_a_store_that_cannot_be_reached_is_unavailable(api: ControlAPI):
    await create(api)

    async def down(*_a, **_kw):
        raise StoreError("cannot reach etcd at http://127.0.0.1:2379")

    api.store.txn = down  # type: ignore[method-assign]
    with pytest.raises(Aborted) as err:
        await api.RemoveService(cpb.RemoveServiceRequest(service_id="web"), CTX)
    assert err.value.code == grpc.StatusCode.UNAVAILABLE and "store is unavailable" in err.value.details


# ---- nodes ---------------------------------------------------------------------------------------


async def add_node(api: ControlAPI, nid: str, role: int = pb.NodeSpec.WORKER, ready: bool = False) -> None:
    n = pb.Node(id=nid)
    n.spec.role = role  # type: ignore[assignment]
    n.description.hostname = nid
    w = Writer(api.store)
    rev = await w.apply(objects.nodes.create(n))
    if ready:
        rev = await w.apply(objects.sessions.put(pb.NodeSession(node_id=nid, session_id="s")))
    assert await api.cache.wait_for(rev, 2)


async def test_a_down_worker_is_removed_with_its_record_and_session(api: ControlAPI):
    await add_node(api, "w1")
    await api.RemoveNode(cpb.RemoveNodeRequest(node_id="w1"), CTX)
    assert await objects.nodes.get(api.store, "w1") is None
    assert (await api.ListNodes(cpb.ListNodesRequest(), CTX)).nodes == []


async def test_a_ready_node_is_removed_only_with_force(api: ControlAPI):
    await add_node(api, "w1", ready=True)
    with pytest.raises(Aborted) as err:
        await api.RemoveNode(cpb.RemoveNodeRequest(node_id="w1"), CTX)
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION and "--force" in err.value.details
    await api.RemoveNode(cpb.RemoveNodeRequest(node_id="w1", force=True), CTX)
    assert await objects.nodes.get(api.store, "w1") is None and await objects.sessions.get(api.store, "w1") is None


async def test_a_manager_must_be_demoted_before_removal_and_the_last_one_cannot_be(api: ControlAPI):
    await add_node(api, "m1", pb.NodeSpec.MANAGER)
    with pytest.raises(Aborted) as err:
        await api.RemoveNode(cpb.RemoveNodeRequest(node_id="m1", force=True), CTX)
    assert "demote it" in err.value.details
    node = (await api.GetNode(cpb.GetNodeRequest(node_id="m1"), CTX)).node
    with pytest.raises(Aborted) as err:
        await api.UpdateNode(cpb.UpdateNodeRequest(node_id="m1", version=node.meta.version, spec=pb.NodeSpec(role=pb.NodeSpec.WORKER)), CTX)
    assert "last manager" in err.value.details


async def test_a_node_update_on_an_old_read_is_refused(api: ControlAPI):
    await add_node(api, "w1")
    node = (await api.GetNode(cpb.GetNodeRequest(node_id="w1"), CTX)).node
    drained = pb.NodeSpec(role=pb.NodeSpec.WORKER, availability=pb.NodeSpec.DRAIN)
    out = (await api.UpdateNode(cpb.UpdateNodeRequest(node_id="w1", version=node.meta.version, spec=drained), CTX)).node
    assert out.spec.availability == pb.NodeSpec.DRAIN and out.meta.version > node.meta.version
    with pytest.raises(Aborted) as err:
        await api.UpdateNode(cpb.UpdateNodeRequest(node_id="w1", version=node.meta.version, spec=pb.NodeSpec()), CTX)
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_node_without_a_session_is_down_and_with_one_ready(api: ControlAPI):
    await add_node(api, "w1")
    await add_node(api, "w2", ready=True)
    states = {n.id: n.status.state for n in (await api.ListNodes(cpb.ListNodesRequest(), CTX)).nodes}
    assert states == {"w1": pb.NodeStatus.DOWN, "w2": pb.NodeStatus.READY}


async def test_node_ls_says_when_more_than_half_of_the_nodes_are_down(api: ControlAPI):
    await add_node(api, "w1")
    await add_node(api, "w2", ready=True)
    nodes = {n.id: n for n in (await api.ListNodes(cpb.ListNodesRequest(), CTX)).nodes}
    assert nodes["w1"].status.message == "", "one of two down: no disruption"
    await add_node(api, "w3")
    nodes = {n.id: n for n in (await api.ListNodes(cpb.ListNodesRequest(), CTX)).nodes}
    assert nodes["w1"].status.message.startswith("mass disruption: 2 of 3 nodes down at once")
    assert nodes["w3"].status.message == nodes["w1"].status.message and nodes["w2"].status.message == ""
    one = (await api.GetNode(cpb.GetNodeRequest(node_id="w3"), CTX)).node
    assert one.status.message == nodes["w3"].status.message


async def test_list_events_reads_the_leaders_events_oldest_first_in_the_window(api: ControlAPI):
    from shoal.manager.orchestrator.events import new_event
    from shoal.manager.store import objects
    from shoal.manager.store.writes import Writer

    later, earlier = new_event(2_000, "node", "down", "n1", "n1 down"), new_event(1_000, "cluster", "disruption", "", "3 of 4 down")
    await Writer(api.store).apply_each([objects.events.put(later), objects.events.put(earlier)])
    got = (await api.ListEvents(cpb.ListEventsRequest(), CTX)).events
    assert [e.action for e in got] == ["disruption", "down"]
    got = (await api.ListEvents(cpb.ListEventsRequest(since_ns=1_500), CTX)).events
    assert [e.actor_id for e in got] == ["n1"]
