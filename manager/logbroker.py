"""The Logs service: ``shoal svc logs`` gathers its lines from the nodes that run the tasks.

The manager the CLI calls is the *subscriber*. It stores a ``LogSubscription`` (which services or
tasks, follow, tail, since, and its own address) under ``/shoal/v1/log-subscriptions/`` on a lease
it keeps alive while the CLI listens, so a CLI that leaves or a manager that dies ends the
subscription everywhere. Every dispatcher sends the live subscriptions that concern a node down that
node's session (see ``dispatcher/logsubs.py``); the node reads its own tasks' logs and sends the
lines back here with ``PublishLogs`` -- straight to this manager, whichever manager holds its
session. Each line must belong to a task assigned to the calling node (its certificate says which
node it is), so a node can never speak for another's tasks.

Without ``follow`` the lines of all nodes are gathered, put in time order and sent once every node
that runs a matching task has said it is done (or has been silent for ``answer_timeout_s``: the CLI
then gets a warning naming it). With ``follow`` lines go out as they arrive, until the CLI leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc

from shoal import log
from shoal.ids import new_id
from shoal.manager.auth import Authority
from shoal.manager.cache import ClusterCache
from shoal.manager.store import objects
from shoal.manager.store.base import Store, StoreError
from shoal.manager.store.writes import Writer
from shoal.proto import logs_pb2 as lpb
from shoal.proto import logs_pb2_grpc as lgrpc
from shoal.proto import types_pb2 as pb

_log = log.get(__name__)

BATCH = 500
"""Lines per message to the CLI when a finished (non-follow) gathering is sent."""


@dataclass
class _Sub:
    record: lpb.LogSubscription
    waiting: set[str]  # nodes that still owe their lines (without follow)
    queue: asyncio.Queue[lpb.SubscribeLogsMessage | None] = field(default_factory=asyncio.Queue)
    named: set[str] = field(default_factory=set)  # tasks the CLI was already told about
    progress: asyncio.Event = field(default_factory=asyncio.Event)


def matching_tasks(tasks: list[pb.Task], service_ids: set[str], task_ids: set[str]) -> list[pb.Task]:
    """The tasks a subscription covers: those of its services, and the tasks it names. Pure."""
    return [t for t in tasks if t.service_id in service_ids or t.id in task_ids]


def resolve_service(services: dict[str, pb.Service], ref: str) -> pb.Service | None:
    """A service by full id, then name, then unique id prefix (docker's order, as the control API)."""
    if ref in services:
        return services[ref]
    named = [s for s in services.values() if s.spec.name == ref]
    if len(named) == 1:
        return named[0]
    found = [s for sid, s in services.items() if ref and sid.startswith(ref)]
    return found[0] if len(found) == 1 else None


def resolve_task(tasks: dict[str, pb.Task], ref: str) -> pb.Task | None:
    """A task by full id or unique id prefix (docker's ``service logs TASK``)."""
    if ref in tasks:
        return tasks[ref]
    found = [t for tid, t in tasks.items() if ref and tid.startswith(ref)]
    return found[0] if len(found) == 1 else None


class LogBroker(lgrpc.LogsServicer):
    def __init__(
        self,
        store: Store,
        cache: ClusterCache,
        authority: Authority,
        address: Callable[[], str],
        lease_ttl_s: float = 10.0,
        answer_timeout_s: float = 10.0,
    ) -> None:
        self.store = store
        self.writer = Writer(store)
        self.cache = cache
        self.authority = authority
        self.address = address
        self.lease_ttl_s = lease_ttl_s
        self.answer_timeout_s = answer_timeout_s
        self.subs: dict[str, _Sub] = {}

    # ---- the CLI's side ----------------------------------------------------------------------
    async def SubscribeLogs(self, request: lpb.SubscribeLogsRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[lpb.SubscribeLogsMessage]:
        record = await self._record(request, context)
        covered = matching_tasks(list(self.cache.tasks().values()), set(record.service_ids), set(record.task_ids))
        nodes = {t.node_id for t in covered if t.node_id}
        down = sorted(n for n in nodes if not self.cache.node_ready(n))
        sub = _Sub(record, waiting=nodes - set(down))
        self.subs[record.id] = sub
        lease = await self.store.lease_grant(self.lease_ttl_s)
        keeper = asyncio.get_running_loop().create_task(self._keep(lease))
        try:
            await self.writer.apply(objects.logsubs.put(record, lease=lease))
            for node_id in down:
                yield lpb.SubscribeLogsMessage(warning=f"node {self._node_name(node_id)} is down: the logs of its tasks are not shown")
            if record.follow:
                while True:
                    msg = await sub.queue.get()
                    if msg is not None:
                        yield msg
            else:
                async for msg in self._gathered(sub):
                    yield msg
        finally:
            keeper.cancel()
            self.subs.pop(record.id, None)
            with contextlib.suppress(StoreError):
                await self.store.lease_revoke(lease)  # takes the subscription key with it

    async def _record(self, request: lpb.SubscribeLogsRequest, context: grpc.aio.ServicerContext) -> lpb.LogSubscription:
        services, tasks = [], []
        for ref in request.services:
            svc = resolve_service(self.cache.services(), ref)
            task = resolve_task(self.cache.tasks(), ref) if svc is None else None
            if svc is None and task is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"no such service or task: {ref}")
            if svc is not None:
                services.append(svc.id)
            elif task is not None:
                tasks.append(task.id)
        for ref in request.tasks:
            task = resolve_task(self.cache.tasks(), ref)
            if task is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"no such task: {ref}")
            tasks.append(task.id)  # type: ignore[union-attr]  # abort raises
        return lpb.LogSubscription(
            id=new_id(), service_ids=services, task_ids=tasks, follow=request.follow,
            tail=request.tail, since_ns=request.since_ns, publish_to=self.address(),
        )  # fmt: skip

    async def _gathered(self, sub: _Sub) -> AsyncIterator[lpb.SubscribeLogsMessage]:
        """Without follow: every node's lines, in time order, once all are in (or the silent are named)."""
        lines: list[lpb.LogLine] = []
        tasks: dict[str, lpb.LogTask] = {}
        while sub.waiting:
            sub.progress.clear()
            while not sub.queue.empty():
                msg = sub.queue.get_nowait()
                if msg is not None:
                    lines.extend(msg.lines)
                    tasks.update((t.task_id, t) for t in msg.tasks)
            if not sub.waiting:
                break
            try:
                async with asyncio.timeout(self.answer_timeout_s):
                    await sub.progress.wait()
            except TimeoutError:
                for node_id in sorted(sub.waiting):
                    yield lpb.SubscribeLogsMessage(warning=f"node {self._node_name(node_id)} did not send its logs within {self.answer_timeout_s:g}s")
                break
        while not sub.queue.empty():
            msg = sub.queue.get_nowait()
            if msg is not None:
                lines.extend(msg.lines)
                tasks.update((t.task_id, t) for t in msg.tasks)
        lines.sort(key=lambda ln: ln.timestamp_ns)
        sent: set[str] = set()
        for i in range(0, len(lines), BATCH):
            chunk = lines[i : i + BATCH]
            new = {ln.task_id for ln in chunk} - sent
            sent |= new
            yield lpb.SubscribeLogsMessage(lines=chunk, tasks=[tasks[t] for t in sorted(new) if t in tasks])

    async def _keep(self, lease: int) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl_s / 3)
            try:
                await self.store.lease_refresh(lease)
            except StoreError as exc:
                _log.warning("log subscription lease lost", error=str(exc))
                return

    def _node_name(self, node_id: str) -> str:
        node = self.cache.get("node", node_id)
        return node.description.hostname if node is not None and node.description.hostname else node_id

    def _task_info(self, task: pb.Task) -> lpb.LogTask:
        return lpb.LogTask(
            task_id=task.id, service_id=task.service_id, service_name=task.service_name, slot=task.slot,
            node_id=task.node_id, node_name=self._node_name(task.node_id),
        )  # fmt: skip

    # ---- the nodes' side ---------------------------------------------------------------------
    async def PublishLogs(self, requests: AsyncIterator[lpb.PublishLogsMessage], context: grpc.aio.ServicerContext) -> lpb.PublishLogsResponse:
        node_id = self.authority.identity(context).node_id
        async for msg in requests:
            sub = self.subs.get(msg.subscription_id)
            if sub is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"no such log subscription: {msg.subscription_id}")
            out = lpb.SubscribeLogsMessage()
            for line in msg.lines:
                task = self.cache.get("task", line.task_id)
                if task is None or task.node_id != node_id:
                    await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"task {line.task_id} is not assigned to node {node_id}")
                if task.id not in sub.named:  # type: ignore[union-attr]  # abort raises
                    sub.named.add(task.id)  # type: ignore[union-attr]  # abort raises: sub is set here
                    out.tasks.append(self._task_info(task))  # type: ignore[arg-type]  # abort raises: task is set here
                out.lines.append(line)
            if out.lines:
                sub.queue.put_nowait(out)
            if msg.close:
                sub.waiting.discard(node_id)
            sub.progress.set()
        return lpb.PublishLogsResponse()
