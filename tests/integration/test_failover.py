"""Two managers on one etcd: a worker joined through one fails over to the other when it dies.

The second manager joins the real way (manager token -> certificate and the CA key's KEK). The
worker learns both addresses from its session; when its manager stops, it re-establishes the
session with the other, its assignments are re-synced, and no task restarts.
"""

from __future__ import annotations

import asyncio
import contextlib

import grpc

from shoal.certfiles import CertFiles
from shoal.manager.server import Manager, ManagerConfig
from shoal.proto import control_pb2 as cpb
from shoal.proto import control_pb2_grpc as cgrpc
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.worker.join import join
from tests.fixtures.cluster import Cluster, free_port, running_n, spec


async def test_worker_fails_over_to_the_other_manager(tmp_path, etcd_store, etcd_server):
    c = Cluster(tmp_path, etcd_server.endpoint, etcd_server.tls)
    c.manager.cfg.election_ttl = 1.0
    await c.start()
    m2 = None
    m2_task = None
    try:
        addr2 = f"127.0.0.1:{free_port()}"
        resp = await join(c.addr, c.manager.cluster_obj.manager_token, CertFiles(tmp_path / "m2" / "certificates"), dpb.RegisterRequest())
        m2_id = resp.node_id  # the cluster chooses a joining node's id
        assert resp.role == pb.NodeSpec.MANAGER and resp.ca_key_kek
        m2 = Manager(
            ManagerConfig(
                data_dir=tmp_path / "m2", node_id=m2_id, listen_addr=addr2, socket_path=str(tmp_path / "m2.sock"),
                etcd_endpoints=[etcd_server.endpoint], etcd_tls=etcd_server.tls, heartbeat_period=0.2, election_ttl=1.0, ca_kek=resp.ca_key_kek,
            )
        )
        m2_task = asyncio.create_task(m2.run())
        await asyncio.wait_for(m2.started.wait(), 10)

        agent = await c.add_agent("w1")
        await c.until(lambda: _has(agent, addr2))  # learnt from the session
        await c.control.CreateService(cpb.CreateServiceRequest(spec=spec(replicas=2)))
        before = {t.id for t in await c.until(lambda: running_n(c, "web", 2))}
        started = list(agent.executor.started)

        first = c.tasks.pop()  # stop manager 1 (its server, its store connection, its leases)
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first
        await c.channel.close()
        c.channel = grpc.aio.insecure_channel(f"unix:{tmp_path / 'm2.sock'}")
        c.control = cgrpc.ControlStub(c.channel)

        async def settled():
            nodes = (await c.control.ListNodes(cpb.ListNodesRequest())).nodes
            w1 = [n for n in nodes if n.description.hostname == "w1"]
            return w1 and w1[0].status.state == pb.NodeStatus.READY and m2.election.leader_id == m2_id

        await c.until(settled, timeout=10)
        await asyncio.sleep(1.0)  # past the old dispatcher's lease and the reconnect grace
        after = {t.id for t in await c.until(lambda: running_n(c, "web", 2))}
        assert after == before and agent.executor.started == started, "no task restarted"
        assert agent.ready.is_set()
    finally:
        if m2_task is not None:
            m2_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await m2_task
        await c.stop()


async def _has(agent, addr):
    return addr in agent.managers
