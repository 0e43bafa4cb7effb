"""Node commands on real etcd and gRPC: drain moves tasks off, pause stops new ones, rm and demote rules."""

from __future__ import annotations

import grpc
import pytest

from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb
from tests.fixtures.cluster import spec


async def _node(cluster, name) -> pb.Node:  # noqa: F811
    return (await cluster.control.GetNode(cpb.GetNodeRequest(node_id=name))).node


async def _update(cluster, name, **kw) -> pb.Node:  # noqa: F811
    n = await _node(cluster, name)
    s = pb.NodeSpec()
    s.CopyFrom(n.spec)
    labels = kw.pop("labels", None)
    for k, v in kw.items():
        setattr(s, k, v)
    if labels is not None:
        s.labels.clear()
        s.labels.update(labels)
    return (await cluster.control.UpdateNode(cpb.UpdateNodeRequest(node_id=n.id, version=n.meta.version, spec=s))).node


async def test_drain_moves_tasks_off_and_pause_takes_no_new_ones(cluster):  # noqa: F811
    await cluster.add_agent("w1")
    await cluster.add_agent("w2")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=spec(replicas=4)))
    w1 = (await _node(cluster, "w1")).id

    async def settled(n, avoid=""):
        r = await cluster.running("web")
        return len(r) == n and all(t.node_id != avoid for t in r) and r

    await cluster.until(lambda: settled(4))
    await _update(cluster, "w1", availability=pb.NodeSpec.DRAIN)
    await cluster.until(lambda: settled(4, avoid=w1))
    # pause: back from drain but paused, a new replica still does not go there
    await _update(cluster, "w1", availability=pb.NodeSpec.PAUSE)
    svc = (await cluster.control.GetService(cpb.GetServiceRequest(service_id="web"))).service
    s = pb.ServiceSpec()
    s.CopyFrom(svc.spec)
    s.replicas = 5
    await cluster.control.UpdateService(cpb.UpdateServiceRequest(service_id=svc.id, version=svc.meta.version, spec=s))
    await cluster.until(lambda: settled(5, avoid=w1))
    listed = (await cluster.control.ListNodes(cpb.ListNodesRequest())).nodes
    assert {n.description.hostname: n.spec.availability for n in listed}["w1"] == pb.NodeSpec.PAUSE


async def test_labels_and_constraints_follow_updates(cluster):  # noqa: F811
    await cluster.add_agent("w1")
    s = spec(replicas=1)
    s.placement.constraints.append("node.labels.zone==east")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=s))
    await _update(cluster, "w1", labels={"zone": "east"})
    r = await cluster.until(lambda: cluster.running("web"))
    assert r[0].node_id == (await _node(cluster, "w1")).id


async def test_rm_refuses_a_ready_node_unless_forced(cluster):  # noqa: F811
    await cluster.add_agent("w1")
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await cluster.control.RemoveNode(cpb.RemoveNodeRequest(node_id="w1"))
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "is not down" in exc.value.details()
    await cluster.kill_agent("w1")

    async def down():
        return (await _node(cluster, "w1")).status.state == pb.NodeStatus.DOWN

    await cluster.until(down)
    await cluster.control.RemoveNode(cpb.RemoveNodeRequest(node_id="w1"))
    assert not (await cluster.control.ListNodes(cpb.ListNodesRequest())).nodes


async def test_demoting_the_last_manager_is_refused(cluster):  # noqa: F811
    await cluster.add_agent("w1")
    await _update(cluster, "w1", role=pb.NodeSpec.MANAGER)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await _update(cluster, "w1", role=pb.NodeSpec.WORKER)
    assert "last manager" in exc.value.details()
    await cluster.add_agent("w2")
    await _update(cluster, "w2", role=pb.NodeSpec.MANAGER)
    node = await _update(cluster, "w1", role=pb.NodeSpec.WORKER)
    assert node.spec.role == pb.NodeSpec.WORKER
