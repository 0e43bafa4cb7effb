"""The agent's own stop (its session refused: the node was removed) is not cut short by one signal.

A removed node stops and deletes its containers on its own; a SIGTERM that comes in meanwhile (the host
shutting down, a lab torn down) asks for the same clean stop, so it must not abandon the one under way:
containers would be left running with no agent to stop them. A second signal abandons it, as it always does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shoal.proto import types_pb2 as pb
from shoal.worker.agent import Agent
from shoal.worker.config import AgentConfig
from shoal.worker.executor_fake import FakeExecutor


class SlowStop(FakeExecutor):
    """Containers that take a grace to stop (``sleep`` ignores SIGTERM)."""

    def __init__(self) -> None:
        super().__init__()
        self.stopping = asyncio.Event()

    async def stop(self, task_id: str, grace_s: float | None) -> None:
        self.stopping.set()
        await asyncio.sleep(0.3)
        await super().stop(task_id, grace_s)


async def agent_running(tmp_path: Path, *task_ids: str) -> tuple[Agent, SlowStop]:
    ex = SlowStop()
    for tid in task_ids:
        await ex.prepare(pb.Task(id=tid))
        await ex.start(pb.Task(id=tid))
    return Agent(AgentConfig(["m1:4242"], "SHOAL-1-x-y", tmp_path / "agent", node_id="n1"), ex), ex


async def test_the_stop_deletes_every_container(tmp_path):
    agent, ex = await agent_running(tmp_path, "t1", "t2")
    await agent._stop_cleanly()
    assert ex.containers == {}


async def test_one_cancel_during_the_stop_lets_it_finish_then_is_raised(tmp_path):
    agent, ex = await agent_running(tmp_path, "t1", "t2")
    stop = asyncio.create_task(agent._stop_cleanly())
    await ex.stopping.wait()
    stop.cancel()  # the first signal
    with pytest.raises(asyncio.CancelledError):
        await stop
    assert ex.containers == {}, "every container stopped and deleted all the same"


async def test_a_second_cancel_abandons_the_stop(tmp_path):
    agent, ex = await agent_running(tmp_path, "t1")
    stop = asyncio.create_task(agent._stop_cleanly())
    await ex.stopping.wait()
    stop.cancel()
    await asyncio.sleep(0.05)
    me = asyncio.current_task()
    for t in asyncio.all_tasks():  # the second signal: the daemon cancels every task
        if t is not me:
            t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stop
    assert list(ex.containers) == ["t1"], "left running, to be re-adopted at the next start"


async def test_a_join_refused_at_start_stops_what_an_earlier_run_left(tmp_path):
    """The node was removed while its agent was down: when it comes back the join is refused, and the
    containers the earlier run left are stopped and deleted, not left running for nobody."""
    from shoal.worker.join import JoinError

    agent, ex = await agent_running(tmp_path, "left1", "left2")

    async def refused(renew: bool = False) -> None:
        raise JoinError("join refused by m1:4242: permission denied: node n1 was removed from the cluster")

    agent.node.register = refused  # type: ignore[method-assign]  # the manager's refusal, without a manager
    with pytest.raises(JoinError, match="was removed from the cluster"):
        await agent.run()
    assert ex.containers == {}
