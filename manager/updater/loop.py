"""The update supervisor's loop: cache events mark services dirty, ``decide`` runs per service, commit.

Thin on purpose (the rules are in ``decide``). It runs on the leader beside the orchestrators and
meets them only through the store: it writes a service's update status (or its rolled-back spec),
creates start-first replacements and shuts down stop-first's old tasks; the orchestrators fill slots
and stop the task a ready replacement took over from. Every write compares the revision the decision
was made on, so a pass that raced the control API or an orchestrator writes nothing and decides again.
Because an update's whole state is in the store, a new leader's supervisor resumes it where it was.
"""

from __future__ import annotations

import time

from google.protobuf.message import Message

from shoal import log, rollout
from shoal.manager.cache import ClusterCache
from shoal.manager.reactor import ALL, Reactor
from shoal.manager.store import objects
from shoal.manager.store.writes import Write, Writer
from shoal.manager.updater.decide import Plan, decide
from shoal.proto import types_pb2 as pb
from shoal.views import TaskView

_log = log.get(__name__)


class Updater:
    def __init__(self, cache: ClusterCache, writer: Writer) -> None:
        self.cache = cache
        self.writer = writer
        self.reactor = Reactor("updater", cache, self._pass)

    def _active(self, service_id: str) -> bool:
        svc = self.cache.get("service", service_id)
        return svc is not None and svc.update_status.state in rollout.ACTIVE_STATES

    def on_change(self, kind: str, obj_id: str, obj: Message | None) -> None:
        if kind == "service":
            self.reactor.mark(obj_id)
        elif kind == "task" and isinstance(obj, pb.Task):
            if self._active(obj.service_id):
                self.reactor.mark(obj.service_id)
        elif kind == "status":
            task = self.cache.get("task", obj_id)
            if task is not None and self._active(task.service_id):
                self.reactor.mark(task.service_id)

    async def run(self) -> None:
        await self.reactor.follow(self.on_change)

    def plan(self, service: pb.Service, now_ns: int) -> Plan:
        tasks = [TaskView(t, self.cache.status(t)) for t in self.cache.tasks_of(service.id)]
        return decide(service, tasks, now_ns)

    def writes(self, service: pb.Service, plan: Plan) -> list[Write]:
        """The store writes that carry out ``plan`` (decided on what the cache holds now)."""
        out: list[Write] = []
        if plan.service is not None:
            out.append(objects.services.update(plan.service, self.cache.rev("service", service.id)))
            _log.info(
                "service update state", service=service.spec.name, state=rollout.state_word(plan.service.update_status),
                message=plan.service.update_status.message,
            )  # fmt: skip
        out += [objects.tasks.create(t) for t in plan.create]
        for task_id in plan.stop:
            cur = self.cache.get("task", task_id)
            if cur is None or cur.desired_state != pb.RUNNING:
                continue
            t = pb.Task()
            t.CopyFrom(cur)
            t.desired_state = pb.SHUTDOWN
            t.meta.updated_at_ns = time.time_ns()
            if self.cache.status(t).state < pb.ASSIGNED:  # never sent to a node: nobody else will end it
                t.status.state = pb.SHUTDOWN
                t.status.timestamp_ns = t.meta.updated_at_ns
                t.status.message = "shut down before it was scheduled"
            out.append(objects.tasks.update(t, self.cache.rev("task", task_id)))
        if plan.create or plan.stop:
            _log.info(
                "rolling update step",
                service=service.spec.name,
                started=len(plan.create),
                stopped=len(plan.stop),
                slots=sorted(t.slot for t in plan.create) or None,
            )
        return out

    async def _pass(self, dirty: set[str]) -> tuple[int, int | None]:
        services = self.cache.services()
        ids = set(services) if ALL in dirty else dirty
        now = time.time_ns()
        changes: list[Write] = []
        wake: int | None = None
        for sid in sorted(ids):
            svc = services.get(sid)
            if svc is None:
                continue
            plan = self.plan(svc, now)
            changes += self.writes(svc, plan)
            if plan.wake_at_ns is not None:
                wake = plan.wake_at_ns if wake is None else min(wake, plan.wake_at_ns)
        if not changes:
            return 0, wake
        _applied, rev = await self.writer.apply_batches(changes)
        return rev, wake
