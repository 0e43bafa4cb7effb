"""The replicated orchestrator's loop: cache events mark services dirty, reconcile them, commit.

Thin on purpose: the decisions are in ``replicated.reconcile``; this module feeds it from the cache
and commits what it returns.
"""

from __future__ import annotations

import time
from collections import defaultdict

from google.protobuf.message import Message

from shoal.manager.cache import ClusterCache
from shoal.manager.commit import Committer
from shoal.manager.orchestrator import replicated
from shoal.manager.orchestrator.types import TaskView
from shoal.manager.reactor import ALL, Reactor
from shoal.proto import types_pb2 as pb


class ReplicatedOrchestrator:
    def __init__(self, cache: ClusterCache, committer: Committer, history_limit: int = replicated.DEFAULT_HISTORY) -> None:
        self.cache = cache
        self.committer = committer
        self.history_limit = history_limit
        self.reactor = Reactor("orchestrator", cache, self._pass)

    def on_change(self, kind: str, obj_id: str, obj: Message | None) -> None:
        if kind == "service":
            self.reactor.mark(obj_id)
        elif kind == "task":
            task = obj if obj is not None else None
            if task is not None:
                self.reactor.mark(task.service_id)  # type: ignore[attr-defined]
        elif kind == "status":
            task = self.cache.tasks().get(obj_id)
            if task is not None:
                self.reactor.mark(task.service_id)
        elif kind in ("session", "node"):
            self.reactor.mark(ALL)  # a node came or went: every service with tasks there may change

    async def run(self) -> None:
        self.cache.listeners.append(self.on_change)
        try:
            self.reactor.mark(ALL)
            await self.reactor.run()
        finally:
            self.cache.listeners.remove(self.on_change)

    async def _pass(self, dirty: set[str]) -> tuple[int, int | None]:
        services = self.cache.services()
        by_service: dict[str, list[TaskView]] = defaultdict(list)
        for t in self.cache.tasks().values():
            by_service[t.service_id].append(TaskView(t, self.cache.status(t)))
        ids = set(services) | set(by_service) if ALL in dirty else dirty
        now = time.time_ns()
        changes, wake = [], None
        for sid in ids:
            svc = services.get(sid)
            if svc is not None and svc.spec.mode != pb.ServiceSpec.REPLICATED:
                continue
            acts = replicated.reconcile(svc, by_service.get(sid, []), self.cache.node_ready, now, self.history_limit)
            changes += self.committer.actions_to_changes(acts)
            if acts.wake_at_ns is not None:
                wake = acts.wake_at_ns if wake is None else min(wake, acts.wake_at_ns)
        if not changes:
            return 0, wake
        _applied, rev = await self.committer.commit(changes)
        return rev, wake
