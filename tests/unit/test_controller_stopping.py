"""A task being stopped is no longer probed: its health checks end as its stop begins, as docker's do.

docker's ``containerStop`` stops a container's health checks before it sends the stop signal. On the
agent the stop of a task that serves through the mesh begins with its drain (``taskstate.DRAIN_S``)
and then waits out the grace period; probing it all that while only costs the node CPU (a rolling
update of 60 replicas with a 1 s check stops 60 tasks, each probed about three more times).
"""

from __future__ import annotations

import asyncio

from shoal.proto import types_pb2 as pb
from shoal.worker import taskstate
from shoal.worker.controller import TaskController
from shoal.worker.executor_fake import FakeExecutor


class ProbeCounter(FakeExecutor):
    """The fake executor, counting health probes (``exec`` calls)."""

    def __init__(self) -> None:
        super().__init__()
        self.probes = 0

    async def exec(self, task_id: str, args: list[str], timeout: float) -> tuple[int, bytes]:
        self.probes += 1
        return await super().exec(task_id, args, timeout)


def published_task_with_check(interval_s: float) -> pb.Task:
    t = pb.Task(id="t1", service_id="s", service_name="web", slot=1, desired_state=pb.RUNNING)
    t.status.state = pb.ASSIGNED
    t.spec.ports.add(target_port=80, published_port=8080)  # it serves through the mesh: its stop drains first
    hc = t.spec.container.healthcheck
    hc.test.extend(["CMD", "probe"])
    hc.interval_ns = hc.start_interval_ns = int(interval_s * 1e9)
    return t


async def test_no_probe_runs_while_a_task_drains_and_stops(monkeypatch):
    monkeypatch.setattr(taskstate, "DRAIN_S", 0.3)
    ex = ProbeCounter()
    reports: list[pb.TaskStatus] = []
    ctl = TaskController(published_task_with_check(0.005), ex, lambda _tid, st: reports.append(st))
    run = asyncio.create_task(ctl.run())

    async def probed_healthy() -> None:
        while not (any(r.health == pb.HEALTH_HEALTHY for r in reports) and ex.probes >= 3):
            await asyncio.sleep(0.001)

    await asyncio.wait_for(probed_healthy(), 5)
    stop = pb.Task()
    stop.CopyFrom(ctl.task)
    stop.desired_state = pb.SHUTDOWN
    before = ex.probes
    ctl.update(stop)
    began = asyncio.get_running_loop().time()
    await asyncio.wait_for(run, 5)
    assert asyncio.get_running_loop().time() - began >= 0.3, "the drain still runs in full"
    assert reports[-1].state == pb.SHUTDOWN
    assert ex.probes - before <= 1, f"{ex.probes - before} probes of a task being stopped (one may have been on its way)"


async def test_a_running_task_keeps_being_probed():
    ex = ProbeCounter()
    ctl = TaskController(published_task_with_check(0.005), ex, lambda _tid, _st: None)
    run = asyncio.create_task(ctl.run())
    try:
        async def probed(n: int) -> None:
            while ex.probes < n:
                await asyncio.sleep(0.001)

        await asyncio.wait_for(probed(10), 5)  # (its health checks did not end after the first healthy probe)
    finally:
        run.cancel()
