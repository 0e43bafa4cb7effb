"""One task on the agent: drives it forward step by step and reports every transition.

The steps come from the pure ``taskstate.next_step``; this module only performs them through the
executor and reports the states reached. A change of desired state (the manager asks for a stop)
interrupts a wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from shoal import log
from shoal.proto import types_pb2 as pb
from shoal.taskstate import TERMINAL
from shoal.worker import health
from shoal.worker.executor import Executor, ExecutorError
from shoal.worker.health import probe_args
from shoal.worker.taskstate import Step, exit_status, next_step

_log = log.get(__name__)

Report = Callable[[str, pb.TaskStatus], None]


class TaskController:
    def __init__(self, task: pb.Task, executor: Executor, report: Report, observed: int | None = None) -> None:
        self.task = task
        self.executor = executor
        self.report = report
        self.observed = observed if observed is not None else max(task.status.state, pb.ASSIGNED)
        self.changed = asyncio.Event()
        self.container = False  # a container exists for this task
        self.health = pb.HEALTH_NONE
        self._since_ns = 0  # when the current state was reached (a health change keeps it: "Running 5 minutes ago")
        self._health: asyncio.Future | None = None
        self.log = _log.bind(task=task.id, service=task.service_name, slot=task.slot)

    def update(self, task: pb.Task) -> None:
        """The manager sent a newer version of the task (desired state may have changed)."""
        self.task = task
        self.changed.set()

    def _set(self, state: int, message: str = "", err: str = "", exit_code: int = 0, pid: int = 0) -> None:
        if state < self.observed:
            raise AssertionError(f"task state moving backwards: {self.observed} -> {state}")
        if state != self.observed or not self._since_ns:
            self._since_ns = time.time_ns()
        self.observed = state
        health = self.health if state == pb.RUNNING else pb.HEALTH_NONE
        st = pb.TaskStatus(
            state=state, timestamp_ns=self._since_ns, message=message, err=err, exit_code=exit_code, pid=pid, container_id=self.task.id if self.container else "", health=health
        )
        self.report(self.task.id, st)
        self.log.info("task state", state=pb.TaskState.Name(state), err=err or None)

    async def run(self) -> None:
        """Drive the task until it is terminal."""
        with structlog.contextvars.bound_contextvars(task=self.task.id):
            try:
                while True:
                    self.changed.clear()
                    step = next_step(self.task.desired_state, self.observed)
                    if step is Step.DONE:
                        return
                    try:
                        await self._do(step)
                    except ExecutorError as exc:
                        state = pb.REJECTED if step is Step.PREPARE else pb.FAILED
                        self._set(state, "failed", err=str(exc))
            finally:
                if self._health is not None:
                    self._health.cancel()

    async def _do(self, step: Step) -> None:
        if step is Step.ACCEPT:
            self._set(pb.ACCEPTED, "accepted")
        elif step is Step.PREPARE:
            self._set(pb.PREPARING, "preparing")
            await self.executor.prepare(self.task)
            self.container = True
        elif step is Step.START:
            self._set(pb.STARTING, "starting")
            pid = await self.executor.start(self.task)
            self._set(pb.RUNNING, "started", pid=pid)
        elif step is Step.WAIT:
            await self._wait()
        elif step is Step.SHUTDOWN:
            if self.container:
                grace = self.task.spec.container.stop_grace_period_ns / 1e9
                await self.executor.stop(self.task.id, grace)
            self._set(pb.SHUTDOWN, "shutdown")

    def _on_health(self, health: int, output: str) -> None:
        self.health = health
        if self.observed == pb.RUNNING:
            self._set(pb.RUNNING, "started", err=f"health check: {output}" if health == pb.HEALTH_UNHEALTHY and output else "")

    async def _exec(self, args: list[str], timeout: float) -> tuple[int, bytes]:
        return await self.executor.exec(self.task.id, args, timeout)

    async def _wait(self) -> None:
        if self._health is None and probe_args(self.task.spec.container.healthcheck) is not None:
            self._health = asyncio.ensure_future(health.monitor(self.task.spec.container.healthcheck, self._exec, self._on_health))
        exited = asyncio.ensure_future(self.executor.wait(self.task.id))
        changed = asyncio.ensure_future(self.changed.wait())
        waits = {exited, changed} | ({self._health} if self._health is not None and not self._health.done() else set())
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
        if not exited.done() and self.health == pb.HEALTH_UNHEALTHY and self.task.desired_state == pb.RUNNING:
            exited.cancel()
            grace = self.task.spec.container.stop_grace_period_ns / 1e9
            await self.executor.stop(self.task.id, grace)
            self._set(pb.FAILED, "failed", err="task: unhealthy container")
            return
        if not exited.done():
            exited.cancel()
            return  # desired state changed: the loop takes the next step
        ex = exited.result()
        if self.task.desired_state >= pb.SHUTDOWN:
            self._set(pb.SHUTDOWN, "shutdown", exit_code=ex.exit_code)
            return
        state, err = exit_status(ex.exit_code, ex.oom_killed)
        self._set(state, "finished" if state == pb.COMPLETE else "failed", err=err, exit_code=ex.exit_code)

    def lost(self, why: str) -> None:
        """The task's container vanished (found on an agent restart): it failed."""
        if self.observed < TERMINAL:
            self._set(pb.FAILED, "failed", err=why)

    async def remove(self) -> None:
        """The task left this node's assignments: stop and delete its container."""
        if self.container or self.observed >= pb.PREPARING:
            await self.executor.stop(self.task.id, 0 if self.observed >= TERMINAL else self.task.spec.container.stop_grace_period_ns / 1e9)
            await self.executor.remove(self.task.id)

