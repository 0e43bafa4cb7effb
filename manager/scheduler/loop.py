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
from shoal.manager.commit import Change, Committer
from shoal.manager.orchestrator.types import TERMINAL
from shoal.manager.reactor import ALL, Reactor
from shoal.manager.scheduler.schedule import NodeInfo, schedule
from shoal.proto import types_pb2 as pb

_log = log.get(__name__)
PLACEMENTS = Counter("shoal_scheduler_placements_total", "Tasks placed on a node by the scheduler")


def snapshot(cache: ClusterCache) -> tuple[list[NodeInfo], list[pb.Task]]:
    """Nodes with what runs on them, and the tasks waiting for a node."""
    nodes = {nid: NodeInfo(n, ready=cache.node_ready(nid)) for nid, n in cache.nodes().items()}
    pending: list[pb.Task] = []
    for t in cache.tasks().values():
        st = cache.status(t).state
        if t.desired_state == pb.RUNNING and st == pb.PENDING and not t.node_id:
            pending.append(t)
        elif t.node_id in nodes and st < TERMINAL and t.desired_state == pb.RUNNING:
            nodes[t.node_id].add(t)
    return sorted(nodes.values(), key=lambda n: n.id), pending


class Scheduler:
    def __init__(self, cache: ClusterCache, committer: Committer) -> None:
        self.cache = cache
        self.committer = committer
        self.reactor = Reactor("scheduler", cache, self._pass)

    def on_change(self, kind: str, obj_id: str, obj: Message | None) -> None:
        if kind in ("task", "node", "session", "status"):
            self.reactor.mark(ALL)

    async def run(self) -> None:
        self.cache.listeners.append(self.on_change)
        try:
            self.reactor.mark(ALL)
            await self.reactor.run()
        finally:
            self.cache.listeners.remove(self.on_change)

    async def _pass(self, dirty: set[str]) -> tuple[int, int | None]:
        nodes, pending = snapshot(self.cache)
        if not pending:
            return 0, None
        plan = schedule(nodes, pending)
        now = time.time_ns()
        changes: list[Change] = []
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
                changes.append(self.committer.task_update(nt))
            elif plan.unassigned.get(t.id) and t.status.err != plan.unassigned[t.id]:
                nt = pb.Task()
                nt.CopyFrom(t)
                nt.status.err = plan.unassigned[t.id]
                nt.status.timestamp_ns = now
                changes.append(self.committer.task_update(nt))
        if not changes:
            return 0, None
        _applied, rev = await self.committer.commit(changes)
        PLACEMENTS.inc(len(plan.assignments))
        return rev, None
