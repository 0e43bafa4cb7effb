"""Promote and demote on real etcd and gRPC: a running worker becomes a manager in place, and back.

The worker's agent is composed with the daemon's ``ManagerRole`` as ``shoal worker`` does. ``promote``
ends its session (its certificate names the old role); it renews into a manager certificate with the
CA key's KEK and starts a Manager on the etcd endpoints the managers record: ``node ls`` shows it
Reachable and its socket serves the control API. ``demote`` stops it, renews a worker certificate
and forgets the KEK; MANAGER STATUS is blank again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

import grpc
import pytest

from shoal import ids
from shoal.manager import ca as cluster_ca
from shoal.manager.server import ManagerConfig
from shoal.manager.store import keys
from shoal.node.role import ManagerRole, manager_data_dir
from shoal.proto import control_pb2 as cpb
from shoal.proto import control_pb2_grpc as cgrpc
from shoal.proto import types_pb2 as pb
from shoal.worker.agent import Agent, AgentConfig
from shoal.worker.executor_fake import FakeExecutor
from tests.fixtures.cluster import free_port


async def _node(cluster, node_id: str) -> pb.Node:  # noqa: F811
    return (await cluster.control.GetNode(cpb.GetNodeRequest(node_id=node_id))).node


async def _set_role(cluster, node_id: str, role: int) -> None:  # noqa: F811
    node = await _node(cluster, node_id)
    new = pb.NodeSpec()
    new.CopyFrom(node.spec)
    new.role = role  # type: ignore[assignment]
    await cluster.control.UpdateNode(cpb.UpdateNodeRequest(node_id=node.id, version=node.meta.version, spec=new))


async def test_promote_starts_a_manager_in_the_running_worker_and_demote_stops_it(cluster, tmp_path):  # noqa: F811
    m0 = await cluster.add_agent("m0", cluster.manager.cluster_obj.manager_token)  # the cluster manager's node record
    node_id, data = ids.new_id(), tmp_path / "w1"
    agent = Agent(AgentConfig([cluster.addr], cluster.manager.cluster_obj.worker_token, data / "agent", "w1", node_id), FakeExecutor())
    listen, sock = f"127.0.0.1:{free_port()}", tmp_path / "w1-manager.sock"
    base = ManagerConfig(data_dir=manager_data_dir(data), node_id=node_id, listen_addr=listen, socket_path=str(sock), heartbeat_period=0.2)
    role = ManagerRole(base)
    agent.on_role = role.on_role
    run = asyncio.create_task(agent.run())
    watch = asyncio.create_task(role.watch())
    kek = cluster_ca.kek_path(base.data_dir / "certificates")
    try:
        await asyncio.wait_for(agent.ready.wait(), 5)
        assert agent.creds.info().role == "worker" and role.task is None
        assert agent.node_id != node_id, "a join gets its id from the cluster; the promoted manager must use that one"
        node_id = agent.node_id

        await _set_role(cluster, node_id, pb.NodeSpec.MANAGER)

        async def reachable():
            n = await _node(cluster, node_id)
            return n.manager_status.reachability == "reachable" and n.status.state == pb.NodeStatus.READY and n

        n = await cluster.until(reachable)
        assert n.manager_status.addr == listen and not n.manager_status.leader
        assert agent.creds.info().role == "manager" and kek.exists(), "renewed into a manager certificate, holding the KEK"
        async with grpc.aio.insecure_channel(f"unix:{sock}") as ch:  # the promoted node serves the control API

            async def served():
                nodes = (await cgrpc.ControlStub(ch).ListNodes(cpb.ListNodesRequest())).nodes
                return {x.id: x.manager_status.reachability for x in nodes}.get(node_id) == "reachable"

            await cluster.until(served, timeout=5)  # its cache sees its own membership key shortly after it starts

        await _set_role(cluster, node_id, pb.NodeSpec.WORKER)

        async def worker_again():
            n = await _node(cluster, node_id)
            return not n.HasField("manager_status") and n.status.state == pb.NodeStatus.READY and role.task is None and not sock.exists() and n

        await cluster.until(worker_again)
        await cluster.until(lambda: _true(agent.creds.info().role == "worker"))
        assert not kek.exists(), "a demoted node keeps no key to the CA"
        with pytest.raises(grpc.aio.AioRpcError) as err:  # the cluster's first manager is the last one again
            await _set_role(cluster, m0.node_id, pb.NodeSpec.WORKER)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "last manager" in err.value.details()
    finally:
        for t in (run, watch):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await role.stop()
    assert not os.path.exists(sock)


async def _true(v: bool) -> bool:
    return v


async def test_promote_is_refused_when_no_manager_records_a_reachable_etcd(cluster, etcd_store):  # noqa: F811
    w1 = await cluster.add_agent("w1")
    mid = cluster.manager.cfg.node_id
    # as a manager on an embedded etcd announces itself: no endpoint another node could use
    await etcd_store.put(keys.key("manager", mid), keys.encode(pb.ManagerStatus(addr=cluster.addr)))
    await cluster.until(lambda: _true(not cluster.manager.cache.get("manager", mid).etcd_endpoints))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _set_role(cluster, w1.node_id, pb.NodeSpec.MANAGER)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.details().startswith(f"cannot promote node {w1.node_id}: the cluster's etcd is only reachable on this host")
    assert (await _node(cluster, w1.node_id)).spec.role == pb.NodeSpec.WORKER, "nothing written"
