"""Promotion on real etcd and gRPC: the record changes at once; the node manages once restarted as a manager.

shoal does not start a manager inside a running worker; ``node promote`` says to restart the node
as ``shoal manager --join ... --token <manager token>`` with its data dir. This checks that path:
the promoted node shows Unreachable, then, restarted the way the hint says (same node id, the
daemon's own join code), it becomes a Reachable manager with the CA key's KEK.
"""

from __future__ import annotations

import asyncio
import contextlib

from shoal.cli.daemons import _join_as_manager
from shoal.manager.server import Manager, ManagerConfig
from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb
from tests.integration.test_control_plane import cluster, free_port  # noqa: F401  (fixture)


async def _node(cluster, node_id: str) -> pb.Node:  # noqa: F811
    return (await cluster.control.GetNode(cpb.GetNodeRequest(node_id=node_id))).node


async def test_a_promoted_worker_restarted_as_a_manager_becomes_reachable(cluster, etcd_server, tmp_path):  # noqa: F811
    w1 = await cluster.add_agent("w1")
    node = await _node(cluster, w1.node_id)
    new = pb.NodeSpec()
    new.CopyFrom(node.spec)
    new.role = pb.NodeSpec.MANAGER
    await cluster.control.UpdateNode(cpb.UpdateNodeRequest(node_id=node.id, version=node.meta.version, spec=new))
    node = await _node(cluster, w1.node_id)
    assert node.spec.role == pb.NodeSpec.MANAGER and node.manager_status.reachability == "unreachable"

    await cluster.kill_agent("w1")  # stop the worker ...
    data_dir = tmp_path / "w1-as-manager"
    kek = await _join_as_manager(cluster.addr, cluster.manager.cluster_obj.manager_token, data_dir, w1.node_id, "w1")
    assert kek, "the promoted node joins as a manager and receives the CA key's KEK"
    addr = f"127.0.0.1:{free_port()}"
    mgr = Manager(
        ManagerConfig(
            data_dir=data_dir, node_id=w1.node_id, listen_addr=addr, socket_path=str(tmp_path / "w1.sock"),
            etcd_endpoints=[etcd_server.endpoint], heartbeat_period=0.2, ca_kek=kek,
        )
    )  # fmt: skip
    task = asyncio.create_task(mgr.run())  # ... and restart it as a manager
    try:
        await asyncio.wait_for(mgr.started.wait(), 10)

        async def reachable():
            n = await _node(cluster, w1.node_id)
            return n.manager_status.reachability == "reachable" and not n.manager_status.leader and n

        n = await cluster.until(reachable)
        assert n.manager_status.addr == mgr.advertise
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
