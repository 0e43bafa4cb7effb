"""An in-memory mirror of the cluster objects in etcd, kept current by one watch.

The leader's loops and the dispatcher read this mirror instead of polling etcd; each object carries
the mod_revision it was read at, so writes that depend on it can compare revisions. Listeners are told
which objects changed and decide themselves what to do (mark dirty, wake a session). A writer that
must read its own write awaits ``wait_for(revision)``, woken by the watch when the mirror gets there.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, overload

from google.protobuf.message import Message

from shoal import log
from shoal.manager.store import keys
from shoal.manager.store.base import Compacted, Event, Store, StoreError
from shoal.manager.store.kinds import Versioned
from shoal.proto import types_pb2 as pb
from shoal.retry import Backoff
from shoal.taskstate import effective_status

_log = log.get(__name__)

Listener = Callable[[str, str, Message | None], None]  # kind, id, new object (None = deleted)


@dataclass
class ClusterCache:
    store: Store
    objects: dict[str, dict[str, Versioned]] = field(default_factory=lambda: {k: {} for k in keys.KINDS})
    revision: int = 0
    listeners: list[Listener] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    by_node: dict[str, set[str]] = field(default_factory=dict)  # node id -> ids of tasks placed there
    by_service: dict[str, set[str]] = field(default_factory=dict)  # service id -> ids of its tasks
    pending: set[str] = field(default_factory=set)  # ids of tasks waiting for a node (effective PENDING, desired RUNNING)
    _waiters: list[tuple[int, int, asyncio.Future[None]]] = field(default_factory=list)  # a heap by revision
    _order: itertools.count[int] = field(default_factory=itertools.count)

    # ---- waiting for a revision --------------------------------------------------------------
    async def wait_for(self, revision: int, timeout: float | None = None) -> bool:
        """Wait until the mirror has seen ``revision`` (a write of this manager's, say); False on timeout.

        Woken by the watch as it applies events (or by a re-list), never by polling.
        """
        if self.revision >= revision:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (revision, next(self._order), fut))
        try:
            async with asyncio.timeout(timeout):
                await fut
        except TimeoutError:
            return False
        return True

    def _wake(self) -> None:
        while self._waiters and self._waiters[0][0] <= self.revision:
            fut = heapq.heappop(self._waiters)[2]
            if not fut.done():
                fut.set_result(None)

    # ---- reads -------------------------------------------------------------------------------
    def services(self) -> dict[str, pb.Service]:
        return {k: v.obj for k, v in self.objects["service"].items()}

    def tasks(self) -> dict[str, pb.Task]:
        return {k: v.obj for k, v in self.objects["task"].items()}

    def nodes(self) -> dict[str, pb.Node]:
        return {k: v.obj for k, v in self.objects["node"].items()}

    # the kinds' message classes, so readers need no cast (keys.KINDS names the same pairs)
    @overload
    def get(self, kind: Literal["service"], obj_id: str) -> pb.Service | None: ...
    @overload
    def get(self, kind: Literal["task"], obj_id: str) -> pb.Task | None: ...
    @overload
    def get(self, kind: Literal["status"], obj_id: str) -> pb.TaskStatus | None: ...
    @overload
    def get(self, kind: Literal["node"], obj_id: str) -> pb.Node | None: ...
    @overload
    def get(self, kind: Literal["session"], obj_id: str) -> pb.NodeSession | None: ...
    @overload
    def get(self, kind: Literal["manager"], obj_id: str) -> pb.ManagerStatus | None: ...
    @overload
    def get(self, kind: Literal["network"], obj_id: str) -> pb.Network | None: ...
    @overload
    def get(self, kind: Literal["endpoint"], obj_id: str) -> pb.ServiceEndpoint | None: ...
    @overload
    def get(self, kind: Literal["addresses"], obj_id: str) -> pb.TaskAddresses | None: ...
    @overload
    def get(self, kind: Literal["nodenet"], obj_id: str) -> pb.NodeNetworkInfo | None: ...
    @overload
    def get(self, kind: Literal["secret"], obj_id: str) -> pb.Secret | None: ...
    @overload
    def get(self, kind: Literal["config"], obj_id: str) -> pb.Config | None: ...
    @overload
    def get(self, kind: str, obj_id: str) -> Message | None: ...
    def get(self, kind: str, obj_id: str) -> Message | None:
        """One object without copying the whole kind (hot paths use this, not ``tasks()``)."""
        v = self.objects[kind].get(obj_id)
        return v.obj if v else None

    def tasks_on(self, node_id: str) -> list[pb.Task]:
        """The tasks placed on a node, from an index kept as objects change."""
        objs = self.objects["task"]
        return [objs[tid].obj for tid in self.by_node.get(node_id, ()) if tid in objs]

    def tasks_of(self, service_id: str) -> list[pb.Task]:
        """The tasks of a service, from an index kept as objects change."""
        objs = self.objects["task"]
        return [objs[tid].obj for tid in self.by_service.get(service_id, ()) if tid in objs]

    def pending_tasks(self) -> list[pb.Task]:
        """The tasks waiting for the scheduler, from an index kept as tasks and statuses change."""
        objs = self.objects["task"]
        return [objs[tid].obj for tid in self.pending if tid in objs]

    def rev(self, kind: str, obj_id: str) -> int:
        v = self.objects[kind].get(obj_id)
        return v.rev if v else 0

    def status(self, task: pb.Task) -> pb.TaskStatus:
        """The effective status: the agent's report once there is one, else the manager's."""
        v = self.objects["status"].get(task.id)
        return effective_status(task, v.obj if v is not None else None)

    def node_ready(self, node_id: str) -> bool:
        return node_id in self.objects["session"]

    # ---- maintenance -------------------------------------------------------------------------
    def _index(self, kind: str, obj_id: str, old: Versioned | None, new: Message | None) -> None:
        if kind == "status":
            self._index_pending(obj_id)
        if kind != "task":
            return
        for index, attr in ((self.by_node, "node_id"), (self.by_service, "service_id")):
            old_key = getattr(old.obj, attr) if old else ""
            new_key = getattr(new, attr) if new is not None else ""
            if old_key and old_key != new_key:
                ids = index.get(old_key)
                if ids is not None:
                    ids.discard(obj_id)
                    if not ids:
                        del index[old_key]
            if new_key:
                index.setdefault(new_key, set()).add(obj_id)
        self._index_pending(obj_id)

    def _index_pending(self, task_id: str) -> None:
        v = self.objects["task"].get(task_id)
        t: pb.Task | None = v.obj if v is not None else None
        if t is not None and t.desired_state == pb.RUNNING and self.status(t).state == pb.PENDING:
            self.pending.add(task_id)
        else:
            self.pending.discard(task_id)

    def _apply(self, kind: str, obj_id: str, value: bytes | None, rev: int) -> Message | None:
        old = self.objects[kind].get(obj_id)
        if value is None:
            self.objects[kind].pop(obj_id, None)
            self._index(kind, obj_id, old, None)
            return None
        obj = keys.decode(kind, value)
        self.objects[kind][obj_id] = Versioned(obj, rev)
        self._index(kind, obj_id, old, obj)
        return obj

    async def load(self) -> None:
        """Read everything once; after this the mirror is consistent at ``self.revision``."""
        rng = await self.store.range(keys.PREFIX)
        before = {kind: set(objs) for kind, objs in self.objects.items()}
        for kind in self.objects:
            self.objects[kind].clear()
        self.by_node.clear()
        self.by_service.clear()
        self.pending.clear()
        for kv in rng.kvs:
            parsed = keys.parse(kv.key)
            if parsed:
                self._apply(parsed[0], parsed[1], kv.value, kv.mod_revision)
        self.revision = rng.revision
        self.ready.set()
        self._wake()
        for kind, objs in self.objects.items():
            for obj_id in before[kind] - set(objs):
                self._notify(kind, obj_id, None)
            for obj_id, v in list(objs.items()):
                self._notify(kind, obj_id, v.obj)

    def _notify(self, kind: str, obj_id: str, obj: Message | None) -> None:
        for fn in list(self.listeners):
            try:
                fn(kind, obj_id, obj)
            except Exception:  # a listener bug must not stop the mirror
                _log.exception("cache listener failed", kind=kind, id=obj_id)

    def _on_events(self, events: list[Event]) -> None:
        for ev in events:
            parsed = keys.parse(ev.key)
            self.revision = max(self.revision, ev.mod_revision)
            if parsed:
                obj = self._apply(parsed[0], parsed[1], ev.value if ev.type == "put" else None, ev.mod_revision)
                self._notify(parsed[0], parsed[1], obj)
        self._wake()

    async def run(self) -> None:
        """Load, then follow the watch forever; a compaction or lost watch re-lists."""
        unavailable = Backoff(0.1, 0.5)  # between re-lists while the store cannot be reached
        while True:
            try:
                await self.load()
                unavailable.reset()
                async for batch in self.store.watch(keys.PREFIX, self.revision + 1):
                    self._on_events(batch)
            except Compacted:
                _log.warning("watch compacted; re-listing")
            except StoreError as exc:
                _log.warning("store watch failed; retrying", error=str(exc))
                await unavailable.sleep()
