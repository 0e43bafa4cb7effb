"""The leader's allocator loop: after every change, one pure pass (``decide.allocate``) over the cache.

When only tasks changed (created, placed, ended: a rolling update's every step), the pass covers just those
tasks (``decide.allocate_tasks``), on the address plan as this loop last wrote it: no read of the plan, no
pass over every task of the cluster, no comparison of every record; the whole pass runs on anything else.

The pass runs inside ``IpamStore.update`` (the address plan is read, changed and written back with
compare-and-swap), then the records that differ from what the cache holds are written with the
leader's fenced writer: ``service-endpoints/``, ``task-networks/``, ``node-networks/``. Containers'
attachments to attachable networks (``attachments/``) are allocated as tasks of their own. The allocator
meets the orchestrator, scheduler, dispatcher and control API only through the store: they read these
records (the dispatcher holds a task back from its node until its addresses are recorded).
"""

from __future__ import annotations

from google.protobuf.message import Message

from shoal import log
from shoal.manager import networks
from shoal.manager.allocator.decide import Plan, Snapshot, allocate, allocate_tasks, with_attachments
from shoal.manager.cache import ClusterCache
from shoal.manager.ipam import IpamStore
from shoal.manager.reactor import ALL, Reactor
from shoal.manager.store import objects
from shoal.manager.store.kinds import Kind
from shoal.manager.store.writes import Write, Writer
from shoal.proto import types_pb2 as pb
from shoal.taskstate import TERMINAL

_log = log.get(__name__)
WATCHED = ("service", "task", "status", "node", "network", "attachment")


class Allocator:
    """Keeps every node, service and task's network allocation current (leader only)."""

    def __init__(self, cache: ClusterCache, writer: Writer, plan: IpamStore) -> None:
        self.cache = cache
        self.writer = writer
        self.plan = plan
        self.reactor = Reactor("allocator", cache, self._pass)
        self.problems: dict[str, str] = {}

    def on_change(self, kind: str, obj_id: str, obj: Message | None) -> None:
        if kind == "status" and isinstance(obj, pb.TaskStatus) and obj.state < TERMINAL:
            return  # only an ended task changes what is allocated (its addresses go); 10,000 starting tasks
            # report three states each, and a pass over the whole cluster per report stalled the leader
        if kind in ("task", "status"):
            self.reactor.mark(obj_id)  # the task's own pass will do (``_tasks_pass``)
        elif kind in WATCHED:
            self.reactor.mark(ALL)

    async def run(self) -> None:
        await self.reactor.follow(self.on_change)

    def snapshot(self) -> Snapshot:
        """The cluster as the pure pass sees it, from the cache."""
        c = self.cache
        nodes = c.nodes()
        return Snapshot(
            networks={k: v.obj for k, v in c.objects["network"].items()},
            services=c.services(),
            tasks=with_attachments({tid: (t, c.status(t).state) for tid, t in c.tasks().items()},
                                   {k: v.obj for k, v in c.objects["attachment"].items() if v.obj.node_id in nodes}),
            nodes=nodes,
            endpoints={k: v.obj for k, v in c.objects["endpoint"].items()},
        )

    def writes(self, plan: Plan) -> list[Write]:
        """The puts for records that changed and the deletes for records nobody needs any more."""
        out: list[Write] = []
        kinds: list[tuple[Kind, str, dict[str, Message]]] = [
            (objects.endpoints, "endpoint", plan.endpoints),  # type: ignore[list-item]  # Kind is invariant in its message type; each triple pairs one kind with its own messages
            (objects.addresses, "addresses", plan.addresses),  # type: ignore[list-item]  # Kind is invariant in its message type; each triple pairs one kind with its own messages
            (objects.nodenets, "nodenet", plan.nodenets),  # type: ignore[list-item]  # Kind is invariant in its message type; each triple pairs one kind with its own messages
        ]
        for kind, name, wanted in kinds:
            have = self.cache.objects[name]
            for oid, rec in wanted.items():
                cur = have.get(oid)
                if cur is None or cur.obj != rec:
                    out.append(kind.put(rec, oid))
            out += [kind.delete(oid) for oid in have if oid not in wanted]
        nodes = self.cache.objects["node"]  # a removed node's containers are gone with it: so are their attachments
        out += [objects.attachments.delete(aid) for aid, v in self.cache.objects["attachment"].items()
                if v.obj.node_id not in nodes]
        return out

    async def _tasks_pass(self, task_ids: set[str]) -> int | None:
        """The pass over ``task_ids`` alone; None when it does not do (see ``decide.allocate_tasks``)."""
        c = self.cache
        tasks = {}
        for tid in task_ids:
            if (task := c.get("task", tid)) is not None:
                tasks[tid] = (task, c.status(task).state)
        snap = Snapshot(networks={k: v.obj for k, v in c.objects["network"].items()}, tasks=tasks, nodes=c.nodes())
        if snap.ingress() is None or not c.objects["nodenet"]:
            return None  # a cluster's first passes are whole ones
        plan = await self.plan.update(lambda ipam: allocate_tasks(ipam, snap, task_ids), reuse=True)
        if plan is None:
            return None
        for oid, why in plan.problems.items():
            if self.problems.get(oid) != why:
                _log.error("cannot allocate network addresses", object=oid, error=why)
        self.problems.update(plan.problems)
        out: list[Write] = []
        for tid in sorted(task_ids):
            rec, cur = plan.addresses.get(tid), c.get("addresses", tid)
            if rec is not None and cur != rec:
                out.append(objects.addresses.put(rec, tid))
            elif rec is None and cur is not None and tid in plan.gone:
                out.append(objects.addresses.delete(tid))
        return await self.writer.apply_each(out)

    async def _pass(self, dirty: set[str]) -> tuple[int, int | None]:
        if ALL not in dirty and (rev := await self._tasks_pass(dirty)) is not None:
            return rev, None
        snap = self.snapshot()
        if snap.ingress() is None:  # the first leader of a cluster makes it; a failure fails the pass (retried)
            ingress = await networks.ensure_ingress(self.writer.store, self.plan, self.writer)
            snap.networks[ingress.id] = ingress
        plan = await self.plan.update(lambda ipam: allocate(ipam, snap), in_thread=True)  # pure, on its own snapshot
        for oid, why in plan.problems.items():
            if self.problems.get(oid) != why:
                _log.error("cannot allocate network addresses", object=oid, error=why)
        self.problems = plan.problems
        rev = await self.writer.apply_each(self.writes(plan))
        return rev, None
