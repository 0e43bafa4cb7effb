"""The tasks an agent holds: one controller per task, adoption after a restart, cleanup on stop.

Assignment sets become controllers (``assignments.diff`` says which to start, update or remove).
The first full set after the agent starts also settles what an earlier run left behind
(``adopt.plan``): containers still running are re-attached, tasks whose container vanished are
failed, containers no task claims are deleted -- those of tasks in the history once their logs are
kept (an agent killed between a task's end and its container's deletion loses no log). Each
controller runs as a background task owned here; a crash is logged with the task it concerned. When the agent stops, every container it runs
is stopped and deleted, so nothing is left behind. An ended task's log outlives its container while
the task is in the history (logkeep.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from shoal import log
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.runtime import logs as jsonlog
from shoal.worker import adopt, assignments
from shoal.worker.controller import Report, TaskController
from shoal.worker.executor import Executor
from shoal.worker.logkeep import LogKeeper

_log = log.get(__name__)

STOP_GRACE_S = 2.0
"""How long a leftover container no task claims gets to stop before it is deleted."""
STOP_PARALLEL = 256
"""Containers stopped at once when the node stops: their graces run side by side (each stop holds a
launcher connection, an fd on both sides, for its grace)."""
STOP_ROUNDS = 5
"""Passes over the runtime's container list when the node stops: a create already sent when the
stop began may land after the first list."""


class TaskManager:
    def __init__(self, executor: Executor, report: Report, kept: LogKeeper | None = None) -> None:
        self.executor = executor
        self.report = report
        self.kept = kept or LogKeeper(None)  # the logs of ended tasks in the history, kept past their containers
        self.controllers: dict[str, TaskController] = {}
        self._bg: set[asyncio.Task] = set()
        self._leftovers: dict[str, pb.Task] | None = None  # containers an earlier run left (and their tasks), until the first full set
        self._never_started: set[str] = set()  # those of them created but never started

    async def load_leftovers(self) -> set[str]:
        """Note the containers an earlier run of the agent left (returned): the first full set settles them."""
        self._leftovers = await self.executor.made_for()
        self._never_started = await self.executor.never_started()
        return set(self._leftovers)

    def apply(self, a: dpb.Assignments) -> None:
        """Act on one assignment set from the manager."""
        if a.full and self._leftovers is not None:
            self._adopt(a)
        changes = assignments.diff(self.controllers.keys(), a)
        for tid in changes.remove:
            self._remove(tid)
        for t in changes.update:
            self.controllers[t.id].update(t)
        for t in changes.start:
            self._start(TaskController(t, self.executor, self.report))

    def _start(self, ctl: TaskController) -> None:
        self.controllers[ctl.task.id] = ctl
        self._spawn(ctl.run(), f"task {ctl.task.id}")

    def _adopt(self, a: dpb.Assignments) -> None:
        """First full set after a start: re-attach to the containers that kept running."""
        leftovers, self._leftovers = self._leftovers or {}, None
        tasks = {t.id: t for t in a.updated}
        p = adopt.plan({tid: t.status.state for tid, t in tasks.items()}, leftovers.keys(), self._never_started, self.kept.history)
        for tid in p.remove:
            self._spawn(self._stop_one(tid), f"remove leftover {tid}")
        for tid in p.history:
            self._spawn(self._stop_one(tid, keep=leftovers[tid]), f"remove leftover {tid}")
        for tid, state in p.adopt.items():
            ctl = TaskController(tasks[tid], self.executor, self.report, observed=state)
            ctl.container = True
            ctl.healthy_once = tid in p.healthy  # else a health-checked task stays STARTING until a check passes again
            self._start(ctl)
            self._spawn(self.executor.adopt(tasks[tid]), f"re-wire {tid}")
            _log.info("re-adopted a running container", task=tid, state=pb.TaskState.Name(state))
        for tid in p.lost:
            ctl = TaskController(tasks[tid], self.executor, self.report, observed=tasks[tid].status.state)
            self.controllers[tid] = ctl
            ctl.lost("container lost while the agent was down")
        for tid, state in p.ended.items():  # held, as a running agent holds an ended task, until it leaves the set
            self.controllers[tid] = TaskController(tasks[tid], self.executor, self.report, observed=state)
            self.controllers[tid].container = True

    def _remove(self, task_id: str) -> None:
        ctl = self.controllers.pop(task_id, None)
        if ctl is not None:
            self._spawn(ctl.remove(before_delete=self._keep_log), f"remove {task_id}")

    def _keep_log(self, task: pb.Task) -> None:
        """Before an ended task's container is deleted: its log stays while the task is in the history."""
        path = self.executor.log_path(task.id)
        self.kept.keep(task, jsonlog.files(path) if path is not None else [])

    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        t = asyncio.create_task(coro)
        self._bg.add(t)

        def done(t: asyncio.Task) -> None:
            self._bg.discard(t)
            if not t.cancelled() and t.exception() is not None:
                _log.error("agent task crashed", what=what, error=repr(t.exception()))

        t.add_done_callback(done)

    async def stop_all(self) -> None:
        """The node is stopping: stop (each container's own grace, then SIGKILL) and delete every
        container, the ones no controller holds too, until the runtime lists none. Raises
        ``StopIncomplete`` naming what is left (it keeps running and is re-adopted at the next start).
        """
        bg = list(self._bg)
        for t in bg:
            t.cancel()
        await asyncio.gather(*bg, return_exceptions=True)  # a cancelled create/stop has sent its request
        self.controllers.clear()
        gate = asyncio.Semaphore(STOP_PARALLEL)
        left: list[str] = []
        for _ in range(STOP_ROUNDS):
            left = await self.executor.list()
            if not left:
                return
            res = await asyncio.gather(*(self._stop_gated(gate, tid) for tid in left), return_exceptions=True)
            for tid, r in zip(left, res, strict=True):
                if isinstance(r, Exception):
                    _log.warning("container did not stop cleanly; trying again", task=tid, error=repr(r))
        left = await self.executor.list()
        if left:
            raise StopIncomplete(
                f"{len(left)} container(s) still there after {STOP_ROUNDS} rounds: {', '.join(sorted(left)[:5])}"
            )

    async def _stop_gated(self, gate: asyncio.Semaphore, tid: str) -> None:
        async with gate:
            await self.executor.stop(tid, None)
            await self.executor.remove(tid)

    async def _stop_one(self, tid: str, keep: pb.Task | None = None) -> None:
        """Delete a leftover container (``keep``: the history task it ran, whose log is kept first)."""
        await self.executor.stop(tid, STOP_GRACE_S)
        if keep is not None:
            self._keep_log(keep)
        await self.executor.remove(tid)


class StopIncomplete(Exception):
    """Some containers could not be stopped when the node stopped."""
