"""The control plane end to end on real etcd and real gRPC: manager, dispatcher and agents.

Agents run the fake executor here (no containers), so these tests check the cluster logic on the
real store and transport; the e2e tests run the same path with the real runtime.
"""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from shoal.manager.server import Manager, ManagerConfig, ManagerError
from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb
from shoal.worker.agent import JoinError
from tests.fixtures.cluster import Cluster, free_port, running_n, spec


async def test_replicated_service_spreads_and_scales(cluster):
    await cluster.add_agent("w1")
    await cluster.add_agent("w2")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=spec(replicas=4)))
    running = await cluster.until(lambda: running_n(cluster, "web", 4))
    by_node: dict[str, int] = {}
    for t in running:
        by_node[t.node_id] = by_node.get(t.node_id, 0) + 1
    assert sorted(by_node.values()) == [2, 2]
    assert sorted(t.slot for t in running) == [1, 2, 3, 4]

    svc = (await cluster.control.GetService(cpb.GetServiceRequest(service_id="web"))).service
    new = pb.ServiceSpec()
    new.CopyFrom(svc.spec)
    new.replicas = 1
    await cluster.control.UpdateService(cpb.UpdateServiceRequest(service_id=svc.id, version=svc.meta.version, spec=new))
    await cluster.until(lambda: _only(cluster, "web", 1))

    # an update against a stale version is refused and changes nothing
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await cluster.control.UpdateService(cpb.UpdateServiceRequest(service_id=svc.id, version=svc.meta.version, spec=new))
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def _only(cluster, name, n):
    tasks = await cluster.tasks_of(name)
    live = [t for t in tasks if t.status.state <= pb.RUNNING]
    return len(live) == n and all(t.status.state == pb.RUNNING for t in live)


async def test_remove_service_removes_its_tasks(cluster):
    agent = await cluster.add_agent("w1")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=spec(replicas=2)))
    await cluster.until(lambda: running_n(cluster, "web", 2))
    await cluster.control.RemoveService(cpb.RemoveServiceRequest(service_id="web"))

    async def gone():
        resp = await cluster.control.ListServices(cpb.ListServicesRequest())
        all_tasks = await cluster.control.ListTasks(cpb.ListTasksRequest())
        return not resp.services and not all_tasks.tasks and not await agent.executor.list()

    await cluster.until(gone)


async def test_failed_task_is_restarted(cluster):
    await cluster.add_agent("w1")
    s = spec(replicas=1, labels={"fake.run_s": "0.05", "fake.exit_code": "3"})
    s.restart_policy.delay_ns = 100_000_000
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=s))

    async def restarted():
        tasks = await cluster.tasks_of("web")
        failed = [t for t in tasks if t.status.state == pb.FAILED]
        return len(failed) >= 2 and failed

    failed = await cluster.until(restarted)
    assert failed[0].status.err == "task: non-zero exit (3)"
    assert failed[0].status.exit_code == 3
    assert all(t.slot == 1 for t in failed)


async def test_invalid_spec_is_refused_and_nothing_written(cluster, etcd_store):
    before = (await etcd_store.range("/shoal/v1/services/")).kvs
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await cluster.control.CreateService(cpb.CreateServiceRequest(spec=spec(replicas=-1)))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "replicas" in exc.value.details()
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=spec(replicas=0)))
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await cluster.control.CreateService(cpb.CreateServiceRequest(spec=spec(replicas=0)))
    assert exc.value.code() == grpc.StatusCode.ALREADY_EXISTS
    after = (await etcd_store.range("/shoal/v1/services/")).kvs
    assert len(after) == len(before) + 1


async def test_wrong_token_is_refused(cluster):
    with pytest.raises(JoinError, match="invalid join token"):
        await cluster.add_agent("bad", token="SHOAL-1-nope-nope")


async def test_unplaceable_task_explains_why(cluster):
    await cluster.add_agent("w1")
    s = spec(replicas=1)
    s.placement.constraints.append("node.labels.zone==east")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=s))

    async def explained():
        tasks = await cluster.tasks_of("web")
        return tasks and tasks[0].status.err

    err = await cluster.until(explained)
    assert err == "no suitable node (1 node fails node.labels.zone==east)"


async def test_node_down_tasks_are_replaced(cluster):
    await cluster.add_agent("w1")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=spec(replicas=2)))
    await cluster.until(lambda: running_n(cluster, "web", 2))
    await cluster.add_agent("w2")
    nodes = {n.description.hostname: n.id for n in (await cluster.control.ListNodes(cpb.ListNodesRequest())).nodes}
    on_w1_or_m = {t.node_id for t in await cluster.running("web")}
    victim = "w1" if nodes["w1"] in on_w1_or_m else None
    assert victim, "w1 ran tasks before w2 joined"
    await cluster.kill_agent("w1")

    async def moved():
        r = await cluster.running("web")
        return len(r) == 2 and all(t.node_id != nodes["w1"] for t in r)

    await cluster.until(moved, timeout=10)

    async def w1_down():  # Unknown first while the manager is younger than its reconnect window, then Down
        listed = {n.description.hostname: n.status.state for n in (await cluster.control.ListNodes(cpb.ListNodesRequest())).nodes}
        assert listed["w1"] in (pb.NodeStatus.UNKNOWN, pb.NodeStatus.DOWN) and listed["w2"] == pb.NodeStatus.READY
        return listed["w1"] == pb.NodeStatus.DOWN

    await cluster.until(w1_down, timeout=5)


async def test_manager_without_etcd_fails_clearly(tmp_path):
    m = Manager(ManagerConfig(data_dir=tmp_path, node_id="x" * 25, listen_addr=f"127.0.0.1:{free_port()}", socket_path="", etcd_endpoints=[f"http://127.0.0.1:{free_port()}"]))
    with pytest.raises(ManagerError, match="etcd"):
        await asyncio.wait_for(m.run(), 15)


async def test_a_node_without_a_session_is_unknown_while_the_manager_is_new_then_down(tmp_path, etcd_store, etcd_server):
    """A node recorded before this manager started has no session yet: Unknown for the new manager's whole
    grace (3 heartbeats + the reconnect grace, 5.6 s here), Down after. The node is written before the
    manager starts, and an early Down is a failure only if it came before the grace could have run out."""
    from shoal.manager.store import keys

    node = pb.Node(id="z" * 25)
    node.description.hostname = "ghost"
    await etcd_store.put(keys.key("node", node.id), keys.encode(node))
    cluster = Cluster(tmp_path, etcd_server.endpoint, etcd_server.tls, reconnect_grace=5.0)
    started = time.monotonic()
    await cluster.start()
    try:
        async def state() -> int:
            nodes = (await cluster.control.ListNodes(cpb.ListNodesRequest())).nodes
            return next(n.status.state for n in nodes if n.id == node.id)

        await cluster.until(lambda: _listed(cluster, node.id))
        first = await state()
        if first != pb.NodeStatus.UNKNOWN:
            assert time.monotonic() - started > 5.6, "a new manager cannot tell yet whether the node is reconnecting"
        await cluster.until(lambda: _is(state, pb.NodeStatus.DOWN), timeout=15)
        assert time.monotonic() - started > 5.6, "Down only once the new manager's grace ran out"
    finally:
        await cluster.stop()


async def _listed(cluster, node_id):
    return any(n.id == node_id for n in (await cluster.control.ListNodes(cpb.ListNodesRequest())).nodes)


async def _is(state, want):
    return await state() == want
