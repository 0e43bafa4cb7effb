"""Exploit (issue 11, Medium): a removed node's certificate re-created its node record through Register.

``node rm`` deleted the record, but the node's certificate stayed valid for its 90 days: the agent
coming back (or whoever copied its key) registered again, got a record, a session and tasks. Now a
removal leaves a tombstone (the node id, who removed it and when, its certificate serial) and every
call made with a certificate of that node is refused, Register and Session included.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from shoal.manager.store import objects
from shoal.proto import control_pb2 as cpb
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import dispatcher_pb2_grpc as dgrpc
from shoal.worker.join import JoinError
from tests.fixtures.cluster import Cluster

pytestmark = pytest.mark.etcd


async def _removed(c: Cluster, name: str):
    agent = await c.add_agent(name)
    await c.kill_agent(name)
    await c.control.RemoveNode(cpb.RemoveNodeRequest(node_id=agent.node_id, force=True))
    return agent


async def test_a_removed_node_cannot_register_again_with_its_certificate(cluster):
    gone = await _removed(cluster, "w1")
    with pytest.raises(JoinError, match=f"node {gone.node_id} was removed from the cluster"):
        await cluster.add_agent("w1")  # same data dir: it presents its old certificate
    assert await objects.nodes.get(cluster.manager.store, gone.node_id) is None, "no record was re-created"


async def test_a_removed_node_cannot_open_a_session(cluster):
    gone = await _removed(cluster, "w2")
    async with gone.creds.channel(cluster.addr) as ch:
        # the request goes as an iterator: with call.write() the server's refusal can race the write and
        # surface as the client's own INTERNAL "execute_batch" error instead of the server's status
        call = dgrpc.DispatcherStub(ch).Session(iter([dpb.SessionRequest(node_id=gone.node_id)]))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.read()
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "revoked" in err.value.details()


async def test_the_tombstone_says_who_removed_which_certificate_and_when(cluster):
    gone = await _removed(cluster, "w3")
    tomb = await objects.tombstones.get(cluster.manager.store, gone.node_id)
    assert tomb is not None and tomb.obj.removed_by == "local" and tomb.obj.removed_at_ns > 0
    serial = format(gone.creds.info().serial, "x")
    assert serial in tomb.obj.cert_serials


async def test_other_nodes_are_not_affected(cluster):
    await _removed(cluster, "w4")
    other = await cluster.add_agent("w5")
    assert other.node_id


async def test_a_running_node_that_is_removed_is_told_so_and_its_agent_stops(cluster):
    agent = await cluster.add_agent("w6")
    _, task = cluster.agents["w6"]
    await cluster.control.RemoveNode(cpb.RemoveNodeRequest(node_id=agent.node_id, force=True))
    done, _ = await asyncio.wait({task}, timeout=15)
    assert done, "the agent of a removed node kept running"
    cluster.agents.pop("w6")
    exc = task.exception()
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    assert f"node {agent.node_id} was removed from the cluster" in str(exc)
