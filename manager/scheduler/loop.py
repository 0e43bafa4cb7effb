"""The scheduler's loop: build a snapshot from the cache, run the pure ``schedule``, commit the plan.

Placements move a task from PENDING to ASSIGNED with its node; a task that fits nowhere stays PENDING
and its status carries the explanation (written only when it changes, so the loop settles).
"""

from __future__ import annotations

import time

from google.protobuf.message import Message
from prometheus_client import Counter

from shoal import log
from shoal.manager.cache import ClusterCache
from shoal.manager.placement import snapshot
from shoal.manager.reactor import ALL, Reactor
from shoal.manager.scheduler.depends import TaskView, waiting
from shoal.manager.scheduler.schedule import Plan, schedule
from shoal.manager.store import objects
from shoal.manager.store.writes import Write, Writer
from shoal.proto import types_pb2 as pb

_log = log.get(__name__)
PLACEMENTS = Counter("shoal_scheduler_placements_total", "Tasks placed on a node by the scheduler")


class Scheduler:
    def __init__(self, cache: ClusterCache, writer: Writer) -> None:
        self.cache = cache
        self.writer = writer
        self.reactor = Reactor("scheduler", cache, self._pass)

    def on_change(self, kind: str, obj_id: str, obj: Message | None) -> None:
        """Only what can change a placement wakes the pass: nodes, or any task change while tasks wait.

        With nothing pending, the storm of status reports that follows a big deployment costs nothing
        here; while tasks wait, a task that ended (its resources freed) or any other change may let
        them fit, so the pass looks again.
        """
        if kind in ("node", "session") or (kind in ("task", "status") and self.cache.pending):
            self.reactor.mark(ALL)

    async def run(self) -> None:
        await self.reactor.follow(self.on_change)

    def _dependencies(self, pending: list[pb.Task]) -> dict[str, str]:
        """Pending tasks held back by their service's depends_on, with the reason (``depends.waiting``)."""
        if not any(t.spec.depends_on for t in pending):
            return {}
        services = {s.spec.name: s for s in self.cache.services().values()}
        wanted = {d.service for t in pending for d in t.spec.depends_on}
        views: dict[str, list[TaskView]] = {}
        for name in wanted & services.keys():
            sid = services[name].id
            views[sid] = []
            for t in self.cache.tasks_of(sid):
                st = self.cache.status(t)
                views[sid].append(TaskView(
                    t.slot, t.node_id, t.desired_state, st.state, st.health, st.exit_code, t.meta.created_at_ns
                ))  # fmt: skip
        return waiting(pending, services, views)

    async def _pass(self, dirty: set[str]) -> tuple[int, int | None]:
        if not self.cache.pending:  # nothing waits for a node: no snapshot needed
            return 0, None
        nodes, pending = snapshot(self.cache)
        if not pending:
            return 0, None
        held = self._dependencies(pending)
        plan = schedule(nodes, [t for t in pending if t.id not in held]) if len(held) < len(pending) else Plan()
        plan.unassigned.update(held)
        now = time.time_ns()
        changes: list[Write] = []
        hostnames = {n.id: n.node.description.hostname for n in nodes}
        for t in pending:
            node_id = plan.assignments.get(t.id)
            if node_id:
                nt = pb.Task()
                nt.CopyFrom(t)
                nt.node_id = node_id
                nt.status.state = pb.ASSIGNED
                nt.status.timestamp_ns = now
                nt.status.message = f"scheduler assigned task to node {hostnames.get(node_id, node_id)}"
                nt.status.err = ""
                nt.meta.updated_at_ns = now
                changes.append(objects.tasks.update(nt, self.cache.rev("task", nt.id)))
            elif plan.unassigned.get(t.id) and t.status.err != plan.unassigned[t.id]:
                nt = pb.Task()
                nt.CopyFrom(t)
                nt.status.err = plan.unassigned[t.id]
                nt.status.timestamp_ns = now
                nt.meta.updated_at_ns = now
                changes.append(objects.tasks.update(nt, self.cache.rev("task", nt.id)))
        if not changes:
            return 0, None
        applied, rev = await self.writer.apply_batches(changes)
        PLACEMENTS.inc(len(plan.assignments))
        if plan.assignments:
            _log.info("tasks assigned", assigned=len(plan.assignments), pending=len(pending), applied=applied)
        return rev, None
