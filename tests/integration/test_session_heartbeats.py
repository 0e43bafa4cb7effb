"""Heartbeats travel on the session stream: they keep a node up; silence on an open stream marks it down.

A real manager (heartbeat period 0.2 s, so 3 missed = 0.6 s) over mutual TLS; a hand-driven session
with a node certificate shows both sides of the rule.
"""

from __future__ import annotations

import asyncio

from shoal.proto import control_pb2 as cpb
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import dispatcher_pb2_grpc as dgrpc
from shoal.proto import types_pb2 as pb
from tests.fixtures.cluster import Cluster


async def _state(cluster: Cluster, node_id: str) -> int:
    nodes = (await cluster.control.ListNodes(cpb.ListNodesRequest())).nodes
    return next(n.status.state for n in nodes if n.id == node_id)


async def test_stream_heartbeats_keep_a_node_up_and_silence_marks_it_down(cluster):
    agent = await cluster.add_agent("w1")
    node_id = agent.node_id
    await cluster.kill_agent("w1")
    async with agent.creds.channel(cluster.addr) as ch:
        call = dgrpc.DispatcherStub(ch).Session()
        await call.write(dpb.SessionRequest(node_id=node_id))
        first = await call.read()
        assert first.heartbeat_period_ns == int(0.2e9)
        await cluster.until(lambda: _is(cluster, node_id, pb.NodeStatus.READY), timeout=5)
        for _ in range(10):  # 2 s = 10 periods, well past the 3 missed that would end the session
            await asyncio.sleep(0.2)
            await call.write(dpb.SessionRequest())
        assert await _state(cluster, node_id) == pb.NodeStatus.READY
        # the stream stays open but carries nothing more: down after 3 periods
        await cluster.until(lambda: _is(cluster, node_id, pb.NodeStatus.DOWN), timeout=5)
        call.cancel()


async def _is(cluster: Cluster, node_id: str, state: int) -> bool:
    return await _state(cluster, node_id) == state
