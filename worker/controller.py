"""One task on the agent: performs the steps the pure state machine names and reports every status.

``taskstate`` decides (the next step, and the status each outcome leads to); this module only makes
the executor calls, turns what they did into an outcome, and reports the statuses reached. A change
of desired state (the manager asks for a stop) interrupts a wait; health checks run beside the wait
and end as the task's stop begins (docker stops a container's health checks before its stop signal).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from shoal import log
from shoal.proto import types_pb2 as pb
from shoal.worker import health, taskstate
from shoal.worker.executor import Executor, ExecutorError, Exit
from shoal.worker.health import probe_args
from shoal.worker.taskstate import Done, Failed, Outcome, Status, Step, Waited

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
        self.healthy_once = False  # its health check passed once: RUNNING is reported from then on
        self._checked = probe_args(task.spec.container.healthcheck) is not None
        self._shown = 0  # the state last reported (shown_state of the observed one)
        self._since_ns = 0  # when the current state was reached (a health change keeps it: "Running 5 minutes ago")
        self._pid = 0  # the container's pid once started (every later report of the running task carries it)
        self._health: asyncio.Future | None = None
        self.log = _log.bind(task=task.id, service=task.service_name, slot=task.slot)

    def update(self, task: pb.Task) -> None:
        """The manager sent a newer version of the task (desired state may have changed)."""
        self.task = task
        self.changed.set()

    def _set(self, st: Status) -> None:
        """Report ``st`` (with the time its state was reached and the current health)."""
        state = taskstate.forward(self.observed, st.state)
        shown = taskstate.shown_state(state, self._checked, self.healthy_once)
        if shown != self._shown or not self._since_ns:
            self._since_ns = time.time_ns()
        self.observed, self._shown = state, shown
        self._pid = st.pid or (self._pid if state < pb.COMPLETE else 0)  # a health report keeps the start's pid
        proto = pb.TaskStatus(
            state=shown,
            timestamp_ns=self._since_ns,
            message=st.message,
            err=st.err,
            exit_code=st.exit_code,
            pid=self._pid,
            container_id=self.task.id if self.container else "",
            health=self.health if state == pb.RUNNING else pb.HEALTH_NONE,
        )
        self.report(self.task.id, proto)
        self.log.info("task state", state=pb.TaskState.Name(state), err=st.err or None,
                      health=pb.Health.Name(proto.health) if self._checked and proto.health else None)

    async def run(self) -> None:
        """Drive the task until it is terminal."""
        with structlog.contextvars.bound_contextvars(task=self.task.id):
            try:
                while True:
                    self.changed.clear()
                    step = taskstate.next_step(self.task.desired_state, self.observed)
                    if step is Step.DONE:
                        return
                    await self._take(step)
            finally:
                self._stop_health()

    async def _take(self, step: Step) -> None:
        """One step: announce it, make its executor call, report the status its outcome leads to."""
        if (st := taskstate.begin(step)) is not None:
            self._set(st)
        began = time.monotonic()
        try:
            outcome = await self._call(step)
        except ExecutorError as exc:
            outcome = Failed(str(exc))
        if step is not Step.WAIT:
            self.log.debug("task step", step=step.value, took_s=round(time.monotonic() - began, 4))
        if (st := taskstate.decide(step, self.task.desired_state, outcome)) is not None:
            self._set(st)

    async def _call(self, step: Step) -> Outcome:
        if step is Step.PREPARE:
            await self.executor.prepare(self.task)
            self.container = True
        elif step is Step.START:
            return Done(pid=await self.executor.start(self.task))
        elif step is Step.WAIT:
            return await self._wait()
        elif step is Step.SHUTDOWN and self.container:
            self._stop_health()  # docker stops a container's health checks as its stop begins
            await asyncio.sleep(taskstate.drain_s(self.task, self.observed))  # out of the mesh before it stops
            self.log.debug("task stop signalled")  # (bench/timeline.py: against each node's mesh without it)
            await self.executor.stop(self.task.id, self._grace())
        return Done()

    def _stop_health(self) -> None:
        """No more probes: the task is stopping (its drain and grace period run probe-free) or done."""
        if self._health is not None:
            self._health.cancel()

    def _grace(self) -> float:
        return self.task.spec.container.stop_grace_period_ns / 1e9

    def _on_health(self, health: int, output: str) -> None:
        self.health = health
        self.healthy_once = self.healthy_once or health == pb.HEALTH_HEALTHY
        if self.observed == pb.RUNNING:
            self._set(taskstate.health_status(health, output))

    async def _exec(self, args: list[str], timeout: float) -> tuple[int, bytes]:
        began = time.monotonic()
        try:
            code, out = await self.executor.exec(self.task.id, args, timeout)
        finally:
            self.log.debug("health probe", took_s=round(time.monotonic() - began, 4))
        return code, out

    async def _wait(self) -> Exit | Waited:
        """Wait for the container to exit, the desired state to change, or its health to fail."""
        hc = self.task.spec.container.healthcheck
        if self._health is None and probe_args(hc) is not None:
            self._health = asyncio.ensure_future(health.monitor(hc, self._exec, self._on_health))
        exited = asyncio.ensure_future(self.executor.wait(self.task.id))
        changed = asyncio.ensure_future(self.changed.wait())
        waits = {exited, changed} | ({self._health} if self._health is not None and not self._health.done() else set())
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            if not exited.done():
                exited.cancel()  # interrupted, unhealthy, or this controller is being cancelled
        ex = exited.result() if exited.done() and not exited.cancelled() else None  # an ExecutorError: the task failed
        outcome = taskstate.wait_outcome(ex, self.health, self.task.desired_state)
        if outcome is Waited.UNHEALTHY:
            await self.executor.stop(self.task.id, self._grace())
        return outcome

    def lost(self, why: str) -> None:
        """The task's container vanished (found on an agent restart): it failed."""
        if (st := taskstate.lost(self.observed, why)) is not None:
            self._set(st)

    async def remove(self, before_delete: Callable[[pb.Task], None] | None = None) -> None:
        """The task left this node's assignments: stop and delete its container (``before_delete`` is
        called between the two: the log may be kept)."""
        grace = taskstate.removal_grace(self.observed, self.container, self._grace())
        if grace is not None:
            await self.executor.stop(self.task.id, grace)
            if before_delete is not None:
                before_delete(self.task)
            await self.executor.remove(self.task.id)
