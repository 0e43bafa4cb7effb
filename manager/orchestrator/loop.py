"""The orchestrators' loop: cache events mark services dirty, reconcile them by mode, commit.

Thin on purpose: the decisions are in ``replicated``, ``globalmode`` and ``jobs``; this module feeds
them from the cache and commits what they return. Tasks may keep running on a node while it is up
and not drained; global services also follow node joins, pauses and label changes. A replicated
service with ``--rebalance`` that needs nothing else is handed to ``rebalance`` with the scheduler's
view of the nodes (built at most once per pass, and only when such a service is looked at).
"""

from __future__ import annotations

import time

from google.protobuf.message import Message

from shoal import log, rollout
from shoal.liveness import Liveness
from shoal.manager.cache import ClusterCache
from shoal.manager.orchestrator import globalmode, jobs, rebalance, replicated
from shoal.manager.orchestrator.events import EVENT_TTL_S, liveness_events
from shoal.manager.orchestrator.types import Actions
from shoal.manager.orchestrator.writes import actions_to_writes
from shoal.manager.placement import room, snapshot
from shoal.manager.reactor import ALL, Reactor
from shoal.manager.store import objects
from shoal.manager.store.writes import Write, Writer
from shoal.proto import types_pb2 as pb
from shoal.taskstate import TERMINAL
from shoal.views import NodeInfo, TaskView

_log = log.get(__name__)

_GLOBAL = (pb.ServiceSpec.GLOBAL, pb.ServiceSpec.GLOBAL_JOB)


class Orchestrator:
    def __init__(self, cache: ClusterCache, writer: Writer, history_limit: int = replicated.DEFAULT_HISTORY, node_grace_s: float = 4.0) -> None:
        self.cache = cache
        self.writer = writer
        self.history_limit = history_limit
        # created when this manager became leader, its sessions already served: every node is Unknown for a full grace
        self.liveness = Liveness(node_grace_s, time.monotonic())
        self.reactor = Reactor("orchestrator", cache, self._pass)
        self.events: list[pb.Event] = []  # to be written with the next commit (kept when a commit fails)
        self._nodes: dict[str, NodeInfo] | None = None  # the scheduler's view, for the current pass only

    def on_change(self, kind: str, obj_id: str, obj: Message | None) -> None:
        if kind == "service":
            self.reactor.mark(obj_id)
        elif kind == "task":
            if isinstance(obj, pb.Task):
                self.reactor.mark(obj.service_id)
        elif kind == "status":
            # a task still on its way to running changes no decision; one that ended may be replaced
            # (a rebalancing service also counts the tasks still starting)
            task = self.cache.get("task", obj_id)
            ended = not isinstance(obj, pb.TaskStatus) or obj.state >= TERMINAL  # no report (deleted) counts as ended
            if task is not None and (ended or self._rebalancing(task.service_id) or self._handing_over(task, obj)):
                self.reactor.mark(task.service_id)
        elif kind in ("session", "node"):
            self.reactor.mark(ALL)  # a node came, went or changed: every service with tasks there may change

    def _handing_over(self, task: pb.Task, status: Message | None) -> bool:
        """A replacement made by a rolling update became ready: the task it replaces may stop (start-first)."""
        if not isinstance(status, pb.TaskStatus) or status.state != pb.RUNNING:
            return False
        svc = self.cache.get("service", task.service_id)
        return svc is not None and svc.update_status.state in rollout.ACTIVE_STATES

    def _rebalancing(self, service_id: str) -> bool:
        svc = self.cache.get("service", service_id)
        return svc is not None and rebalance.enabled(svc)

    async def run(self) -> None:
        await self.reactor.follow(self.on_change)

    def node_up(self, node_id: str) -> bool:
        """The node has a session, or its tasks may not be replaced yet (see shoal.liveness)."""
        return self.cache.node_ready(node_id) or not self.liveness.may_replace(node_id, time.monotonic())

    def node_ok(self, node_id: str) -> bool:
        """Tasks may keep running on the node: it exists, is up (or held) and is not drained."""
        node = self.cache.get("node", node_id)
        return node is not None and self.node_up(node_id) and node.spec.availability != pb.NodeSpec.DRAIN

    def _observe_nodes(self, nodes: dict[str, pb.Node]) -> int | None:
        """Feed the liveness rules this pass's nodes; the wall-clock ns when they next change by themselves.

        What changed is also kept as events (``self.events``) for the pass to write.
        """
        now = time.monotonic()
        released = set(self.liveness.released)
        note = self.liveness.observe({nid for nid in nodes if not self.cache.node_ready(nid)}, len(nodes), now)
        if note:
            _log.warning(note)
        hostnames = {nid: n.description.hostname for nid, n in nodes.items()}
        self.events += liveness_events(note, self.liveness.is_disrupted, released, self.liveness.released, hostnames, time.time_ns())
        at = self.liveness.next_change(now)
        return None if at is None else time.time_ns() + int((at - now) * 1e9) + 1

    def decide(self, svc: pb.Service | None, tasks: list[TaskView], nodes: dict[str, pb.Node], now: int) -> Actions:
        mode = svc.spec.mode if svc is not None else None
        if mode in _GLOBAL or (svc is None and tasks and not tasks[0].task.slot):
            return globalmode.reconcile(svc, tasks, nodes, self.node_up, now, self.history_limit)
        if mode == pb.ServiceSpec.REPLICATED_JOB:
            return jobs.reconcile(svc, tasks, self.node_ok, now, self.history_limit)
        acts = replicated.reconcile(svc, tasks, self.node_ok, now, self.history_limit, self.load)
        if svc is not None and rebalance.enabled(svc) and not acts.create and not acts.set_desired:
            rebalance.add_moves(svc, rebalance.moves(svc, tasks, self.loads(svc, len(tasks))), acts, now)
        return acts

    def node_infos(self) -> dict[str, NodeInfo]:
        if self._nodes is None:
            self._nodes = {n.id: n for n in snapshot(self.cache)[0]}
        return self._nodes

    def load(self, node_id: str) -> int:
        """Live tasks (of every service) on the node."""
        n = self.node_infos().get(node_id)
        return n.tasks_total if n is not None else 0

    def loads(self, svc: pb.Service, limit: int) -> dict[str, rebalance.NodeLoad]:
        """The nodes eligible for ``svc`` with their room for it, total load and recent failures."""
        infos = self.node_infos()
        rooms = room(svc.spec, svc.id, list(infos.values()), limit)
        return {nid: rebalance.NodeLoad(r, infos[nid].tasks_total, infos[nid].failures[svc.id] > 0) for nid, r in rooms.items()}

    async def _pass(self, dirty: set[str]) -> tuple[int, int | None]:
        services = self.cache.services()
        nodes = self.cache.nodes()
        ids = set(services) | set(self.cache.by_service) if ALL in dirty else dirty
        status = self.cache.status
        by_service = {sid: [TaskView(t, status(t)) for t in self.cache.tasks_of(sid)] for sid in ids}
        now = time.time_ns()
        changes: list[Write] = []
        wake = self._observe_nodes(nodes)
        self._nodes = None
        for sid in sorted(ids):
            acts = self.decide(services.get(sid), by_service.get(sid, []), nodes, now)
            changes += actions_to_writes(self.cache, acts)
            if acts.wake_at_ns is not None:
                wake = acts.wake_at_ns if wake is None else min(wake, acts.wake_at_ns)
        changes += await self._event_writes()
        if not changes:
            return 0, wake
        applied, rev = await self.writer.apply_batches(changes)
        self.events = []
        _log.info("orchestrator changes committed", services=len(ids), changes=len(changes), applied=applied)
        return rev, wake


    async def _event_writes(self) -> list[Write]:
        """The pending events as writes, on a lease of their own: etcd forgets them after EVENT_TTL_S."""
        if not self.events:
            return []
        lease = await self.writer.store.lease_grant(EVENT_TTL_S)
        return [objects.events.put(e, lease=lease) for e in self.events]


ReplicatedOrchestrator = Orchestrator  # the walking skeleton's name
