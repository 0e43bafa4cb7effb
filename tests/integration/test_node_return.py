"""A node that comes back after being declared down stops the tasks that were replaced meanwhile.

The agent "dies" without stopping its containers (as after kill -9: the fake executor keeps them),
the dispatcher declares the node down after the reconnect grace, the leader replaces its tasks on
another node; then the agent restarts with the same identity and executor: it gets its full
assignment set, which no longer holds the replaced tasks, and deletes their containers. No slot
runs twice afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib

from shoal.proto import control_pb2 as cpb
from shoal.worker.agent import Agent, AgentConfig
from tests.fixtures.cluster import spec


async def test_returning_node_stops_replaced_tasks(cluster):
    a1 = await cluster.add_agent("w1")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=spec(replicas=2)))

    async def on_w1():
        r = await cluster.running("web")
        return len(r) == 2 and all(t.node_id == a1.node_id for t in r) and r

    old = {t.id for t in await cluster.until(on_w1)}
    await cluster.add_agent("w2")

    async def crash() -> None:  # kill -9: containers keep running
        return None

    a1._stop_all = crash  # type: ignore[method-assign]
    _agent, task = cluster.agents.pop("w1")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert set(await a1.executor.list()) == old

    async def replaced():
        r = await cluster.running("web")
        return len(r) == 2 and all(t.node_id != a1.node_id for t in r)

    await cluster.until(replaced, timeout=10)

    back = Agent(AgentConfig([cluster.addr], cluster.manager.cluster_obj.worker_token, cluster.tmp / "w1", hostname="w1"), a1.executor)
    cluster.agents["w1"] = (back, asyncio.create_task(back.run()))
    await asyncio.wait_for(back.ready.wait(), 5)
    assert back.node_id == a1.node_id

    async def cleaned():
        return not set(await back.executor.list()) & old

    await cluster.until(cleaned, timeout=5)
    r = await cluster.running("web")
    assert len(r) == 2 and not {t.id for t in r} & old
