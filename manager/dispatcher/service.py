"""The Dispatcher gRPC service: join, sessions, heartbeats and status reports from agents.

Heartbeats stay in memory; etcd sees only transitions: a node's session key is written when its
session starts and deleted when it misses 3 heartbeats or its stream closes without a reconnect
within the grace. Session keys ride on one lease per dispatcher, so a dead manager's sessions vanish
when its lease expires. Status reports are coalesced and written in batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc
from google.protobuf.message import Message
from prometheus_client import Gauge

from shoal import log
from shoal.ids import new_id
from shoal.manager.auth import ROLE_CHANGED, Authority, Identity, refusal, request_id_mismatch, role_changed
from shoal.manager.cache import ClusterCache
from shoal.manager.dispatcher import attach, logsubs
from shoal.manager.dispatcher.assignments import AssignmentSet, wanted
from shoal.manager.dispatcher.drain import MeshState, behind, released, wait_until_ns
from shoal.manager.dispatcher.netaudience import Everyone
from shoal.manager.dispatcher.netfeed import NetFeed
from shoal.manager.dispatcher.netmap import MapSet
from shoal.manager.dispatcher.payloads import PayloadSet
from shoal.manager.dispatcher.register import Registrar
from shoal.manager.dispatcher.sessionkey import write_session_key
from shoal.manager.dispatcher.status import StatusWriter
from shoal.manager.sealing import SealError
from shoal.manager.secretbox import SecretBox
from shoal.manager.store import objects
from shoal.manager.store.base import Store, StoreError
from shoal.manager.store.writes import Writer
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import dispatcher_pb2_grpc as dgrpc
from shoal.proto import types_pb2 as pb

_log = log.get(__name__)
SILENT_PERIODS = 2.5
"""A node that has sent nothing for this many heartbeat periods is down (2.5 s by default): an agent may be
up to 1.5 periods late without being counted out, and a host that went silent is known within 1.5-2.5 s
(node loss <= 3 s with its replacement started). A closed connection is quicker: the reconnect grace."""
SESSIONS = Gauge("shoal_dispatcher_sessions", "Agent sessions held by this dispatcher")


@dataclass
class Session:
    node_id: str
    session_id: str
    last_seen: float = field(default_factory=time.monotonic)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    cert_role: str = ""  # the role in the certificate the node opened the session with
    mesh: MeshState = field(default_factory=MeshState)  # the maps sent and the mesh the node loaded (see drain)
    hold_until: float | None = None  # a stop held back for the meshes goes anyway then (time.time_ns() / 1e9)
    held: dict[str, tuple[int, frozenset[str] | None]] = field(default_factory=dict)  # stop held: its revision, nodes (None: all)


class Dispatcher(dgrpc.DispatcherServicer):
    def __init__(
        self,
        store: Store,
        cache: ClusterCache,
        manager_id: str,
        authority: Authority,
        registrar: Registrar,
        heartbeat_period: float = 1.0,
        missed_heartbeats: float = SILENT_PERIODS,
        reconnect_grace: float = 1.0,
        secret_box: Callable[[], SecretBox | None] = lambda: None,
    ) -> None:
        self.store = store
        self.writer = Writer(store)
        self.cache = cache
        self.manager_id = manager_id
        self.authority = authority
        self.registrar = registrar
        self.period = heartbeat_period
        self.missed = missed_heartbeats
        self.grace = reconnect_grace
        self.secret_box = secret_box  # opens secrets for the nodes whose tasks use them (in memory only)
        self.sessions: dict[str, Session] = {}
        self.lease = 0
        self.status = StatusWriter(store, cache)
        self._task_node: dict[str, str] = {}
        self.net = NetFeed(cache)
        # Node loss is detected in memory (missed heartbeats, closed streams); the lease only has to
        # outlive a busy moment of this manager and to expire when the manager is gone.
        self.lease_ttl = max(self.period * self.missed * 3, 10.0)

    # ---- lifecycle ---------------------------------------------------------------------------
    async def run(self) -> None:
        """Keep the dispatcher lease alive, expire silent sessions, flush status reports."""
        self.lease = await self.store.lease_grant(self.lease_ttl)
        self.cache.listeners.append(self._on_change)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.status.run())
                tg.create_task(self._keepalive())
                tg.create_task(self._expire())
        finally:
            self.cache.listeners.remove(self._on_change)

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            try:
                await self.store.lease_refresh(self.lease)
            except StoreError as exc:  # expired (this manager stalled, etcd restarted): take the sessions to a new one
                _log.warning("dispatcher lease lost; re-granting it and re-writing the session keys", error=str(exc))
                self.lease = await self.store.lease_grant(self.lease_ttl)
                await self.writer.apply_each([objects.sessions.put(self._record(s), lease=self.lease) for s in self.sessions.values()])

    async def _expire(self) -> None:
        """Look for silent nodes every tenth of a period: one is down within 0.1 period of its limit (a
        look over 1,000 sessions costs well under a millisecond), not up to half a period late."""
        tick = self.period / 10
        last = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            lag = now - last - tick
            last = now
            if lag > self.period / 2:  # this manager stalled: the nodes are not to blame for heartbeats it did not read
                _log.warning("event loop stalled; not counting the stall against the nodes", stall_s=round(lag, 3))
                for s in self.sessions.values():
                    s.last_seen += lag
            limit = now - self.period * self.missed
            for s in list(self.sessions.values()):
                if s.last_seen < limit:
                    _log.warning("node missed its heartbeats; marking it down", node=s.node_id)
                    await self._end(s)

    async def _end(self, s: Session) -> None:
        s.closed = True
        s.wake.set()
        if self.sessions.get(s.node_id) is s:
            del self.sessions[s.node_id]
            SESSIONS.set(len(self.sessions))
            await self.writer.apply_each([objects.end_session(self._record(s))])  # unless a newer session took the key

    def _record(self, s: Session) -> pb.NodeSession:
        """The session's record in the store: which manager holds the node's session."""
        return pb.NodeSession(node_id=s.node_id, session_id=s.session_id, manager_id=self.manager_id)

    def _on_change(self, kind: str, obj_id: str, obj: Message | None) -> None:
        concerned = self.net.concerned(kind, obj_id, obj)  # the nodes whose network map may change
        if isinstance(concerned, Everyone) or kind == "logsub":  # a `svc logs` subscription: every node may need it
            for other in self.sessions.values():
                other.wake.set()
        else:
            for nid in concerned:
                if (other := self.sessions.get(nid)) is not None:
                    other.wake.set()
        node_id = ""
        if kind == "task":
            node_id = obj.node_id if obj is not None else self._task_node.pop(obj_id, "")  # type: ignore[attr-defined]  # a listener gets the kind's message: a Task here
            if obj is not None and node_id:
                self._task_node[obj_id] = node_id
        elif kind == "node":
            node_id = obj_id  # a role change ends the session (see Session)
        elif kind in ("status", "addresses"):  # a task held back for its addresses may go to its node now
            task = self.cache.get("task", obj_id)
            node_id = task.node_id if task is not None else self._task_node.get(obj_id, "")
        s = self.sessions.get(node_id) if node_id else None
        if s is not None:
            s.wake.set()

    # ---- helpers -----------------------------------------------------------------------------
    async def _caller(self, node_id: str, context: grpc.aio.ServicerContext) -> str:
        """The node id in the caller's certificate, which the request must name."""
        ident = self.authority.identity(context)
        if request_id_mismatch(ident.node_id, node_id):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"this certificate is for node {ident.node_id}, not {node_id}")
        return ident.node_id

    async def _session(self, node_id: str, session_id: str, context: grpc.aio.ServicerContext) -> Session:
        node_id = await self._caller(node_id, context)
        s = self.sessions.get(node_id)
        if s is None or s.session_id != session_id or s.closed:
            await context.abort(grpc.StatusCode.NOT_FOUND, "session not found; start a new session")
        return s

    def managers(self) -> list[str]:
        return sorted(m.addr for m in (v.obj for v in self.cache.objects["manager"].values()) if m.addr)

    def manager_statuses(self) -> list[pb.ManagerStatus]:
        return [v.obj for v in self.cache.objects["manager"].values()]

    def secret_data(self, secret_id: str) -> bytes | None:
        """A secret's clear data for a node that runs a task using it (None: gone, or no data key)."""
        sec, box = self.cache.get("secret", secret_id), self.secret_box()
        if sec is None or box is None:
            return None
        try:
            return box.open(sec.id, sec.data_sealed)
        except SealError as exc:
            _log.error("a secret cannot be opened; its tasks fail on the node", secret=secret_id, error=str(exc))
            return None

    def config_data(self, config_id: str) -> bytes | None:
        cfg = self.cache.get("config", config_id)
        return cfg.spec.data if cfg is not None else None

    def _assignments(self, s: Session, sent: AssignmentSet, files: PayloadSet, full: bool) -> dpb.Assignments | None:
        """The node's next assignment message: tasks, and the secrets and configs they need (before them).

        The files go first, within the payload budget; a task whose files did not all fit waits for the
        next message (``files.deferred``: the session loop sends it at once)."""
        tasks = self.cache.tasks_on(s.node_id)

        def state(t: pb.Task) -> int:
            return self.cache.status(t).state

        going = {t.id for t in tasks if wanted(t, state(t)) and (t.id in sent.sent or self.net.ready(t))}
        data = files.diff(tasks, going, state, full, self.secret_data, self.config_data)
        s.hold_until = None
        msg = sent.diff(tasks, state, lambda tid: self.cache.rev("task", tid), full, self.cache.status,
                        ready=lambda t: self.net.ready(t) and files.complete(t), fill=self.net.fill,
                        hold=lambda t: self._held(s, t))
        for tid in [tid for tid in s.held if tid not in sent.sent]:  # gone from the node's set meanwhile
            del s.held[tid]
        if data is None:
            return msg
        if msg is None:
            return data
        msg.MergeFrom(data)  # the task fields of ``data`` are empty; full stays as ``msg`` says
        msg.full = full
        return msg

    def _held(self, s: Session, task: pb.Task) -> bool:
        """Whether the change of ``task`` (on ``s``'s node) waits: a stop while some node's mesh may still
        send it connections (see ``drain``); notes in ``s`` when to send it anyway."""
        who = self.net.audience.seen_by((bool(task.spec.ports), frozenset(a.target for a in task.spec.networks)))
        nodes = {n: o.mesh for n, o in self.sessions.items() if isinstance(who, Everyone) or n in who}
        waits = behind(task, self.cache.status(task).state, self.cache.rev("task", task.id), time.time_ns(), nodes)
        if waits:
            until = wait_until_ns(task) / 1e9
            s.hold_until = until if s.hold_until is None else min(s.hold_until, until)
            if task.id not in s.held:
                _log.debug("stop held for the nodes' meshes", task=task.id, nodes=waits)
            s.held[task.id] = (self.cache.rev("task", task.id), None if isinstance(who, Everyone) else frozenset(who))
        elif s.held.pop(task.id, None) is not None:
            _log.debug("stop released", task=task.id, waited_s=round(time.time() - task.meta.updated_at_ns / 1e9, 3))
        return bool(waits)

    # ---- RPCs --------------------------------------------------------------------------------
    async def Register(self, request: dpb.RegisterRequest, context: grpc.aio.ServicerContext) -> dpb.RegisterResponse:
        return await self.registrar.register(request, context)

    async def Session(self, requests: AsyncIterator[dpb.SessionRequest], context: grpc.aio.ServicerContext) -> AsyncIterator[dpb.SessionMessage]:
        request = await anext(aiter(requests), None)
        if request is None:
            return
        node_id = await self._caller(request.node_id, context)
        if self.cache.get("node", node_id) is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"node {node_id} is not registered; join first")
        old = self.sessions.get(node_id)
        if old is not None:
            old.closed = True
            old.wake.set()
        s = Session(node_id, new_id(), cert_role=self.authority.identity(context).role)
        self.sessions[s.node_id] = s
        SESSIONS.set(len(self.sessions))
        await self._record_session(s)
        if s.closed:  # ended (missed its heartbeats, or a newer session) while its key was being written
            await self.writer.apply_each([objects.end_session(self._record(s))])  # the key, unless a newer session took it
            newer = self.sessions.get(s.node_id)
            if newer is not None and not newer.closed:  # a late write of ours may have covered the newer key
                await self._record_session(newer)
            return
        _log.info("session started", node=s.node_id, session=s.session_id)
        sent = AssignmentSet()
        files = PayloadSet()
        maps = MapSet()
        subs = logsubs.SentSubscriptions()
        full = True
        reader = asyncio.get_running_loop().create_task(self._heartbeats(s, requests))
        try:
            while not s.closed:
                s.wake.clear()
                node = self.cache.get("node", s.node_id)
                if node is None:  # removed (node rm): tell the node, which then leaves the cluster
                    _log.info("node removed; ending its session", node=s.node_id)
                    await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                        refusal(Identity("", s.node_id, revoked=True), "Session"))
                if node is not None and role_changed(node.spec.role, s.cert_role):
                    _log.info("node role changed; ending its session so it renews its certificate", node=s.node_id)
                    await context.abort(grpc.StatusCode.FAILED_PRECONDITION, ROLE_CHANGED)
                netmap = self._network_map(s, maps, full)
                msg = self._assignments(s, sent, files, full)
                logs = subs.diff(logsubs.for_node(self.cache.tasks_on(s.node_id), (v.obj for v in self.cache.objects["logsub"].values())), full)
                if msg is not None and msg.updated or msg is not None and msg.removed:
                    _log.debug("assignments sent", node=s.node_id, updated=len(msg.updated), removed=len(msg.removed))
                if msg is not None or netmap is not None or logs is not None or full:
                    yield dpb.SessionMessage(
                        session_id=s.session_id,
                        managers=self.managers(),
                        heartbeat_period_ns=int(self.period * 1e9),
                        assignments=msg,
                        network_map=netmap,
                        log_subscriptions=logs,
                    )
                full = False
                if not files.deferred:  # else more files (and the tasks that need them) go at once
                    await _woken(s)
        finally:
            reader.cancel()
            if not s.closed:
                asyncio.get_running_loop().create_task(self._after_grace(s))

    async def _record_session(self, s: Session) -> None:
        """Write the session key (see ``sessionkey``), retrying for as long as the node's heartbeat limit."""
        await write_session_key(self.writer, self._record(s), lambda: self.lease, lambda: s.closed, self.period, self.period * self.missed)

    def _network_map(self, s: Session, maps: MapSet, full: bool) -> dpb.NetworkMap | None:
        """The node's next network map message, stamped with the revision it was cut at (see ``drain``)."""
        rev = self.cache.revision
        netmap = maps.diff(self.net.cluster_net().node_map(s.node_id), full)
        if netmap is not None:
            netmap.revision = rev
            s.mesh.map_sent(rev)
        elif s.mesh.unchanged(rev):  # its mesh is current at ``rev``: stops waiting for it may go
            self._wake_holders()
        return netmap

    def _wake_holders(self) -> None:
        """Wake the sessions holding a stop that every node's mesh now lets go (not at every acknowledgement)."""
        for other in self.sessions.values():
            if any(released(rev, [o.mesh for n, o in self.sessions.items() if who is None or n in who])
                   for rev, who in other.held.values()):
                other.wake.set()

    async def _heartbeats(self, s: Session, requests: AsyncIterator[dpb.SessionRequest]) -> None:
        """Every message after the first on the session stream is a heartbeat: note it in memory, with the
        mesh the node has loaded (news wakes the sessions holding stops back: see ``drain``)."""
        try:
            async for req in requests:
                s.last_seen = time.monotonic()
                if req.mesh_revision and s.mesh.ack(req.mesh_revision):
                    self._wake_holders()  # (its own loop has nothing new to send for it)
        except (asyncio.CancelledError, grpc.aio.AioRpcError, grpc.RpcError):
            pass  # the stream ended: the writer side notices and the grace decides

    async def _after_grace(self, s: Session) -> None:
        """The stream closed: the node is down unless it starts a new session within the grace."""
        await asyncio.sleep(self.grace)
        if self.sessions.get(s.node_id) is s:
            _log.warning("session closed without a reconnect; marking node down", node=s.node_id)
            await self._end(s)

    async def Heartbeat(self, request: dpb.HeartbeatRequest, context: grpc.aio.ServicerContext) -> dpb.HeartbeatResponse:
        """A heartbeat as a unary call (agents send them on the session stream; this stays for other clients)."""
        s = await self._session(request.node_id, request.session_id, context)
        s.last_seen = time.monotonic()
        return dpb.HeartbeatResponse(period_ns=int(self.period * 1e9))

    async def UpdateTaskStatus(self, request: dpb.UpdateTaskStatusRequest, context: grpc.aio.ServicerContext) -> dpb.UpdateTaskStatusResponse:
        s = await self._session(request.node_id, request.session_id, context)
        s.last_seen = time.monotonic()
        for u in request.updates:
            t = self.cache.get("task", u.task_id)
            if t is not None and t.node_id != s.node_id:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"task {u.task_id} is not assigned to node {s.node_id}")
        for u in request.updates:
            self.status.submit(u.task_id, u.status)
        await self.status.flushed()
        return dpb.UpdateTaskStatusResponse()


    async def AttachNetwork(self, request: dpb.AttachNetworkRequest, context: grpc.aio.ServicerContext) -> dpb.AttachNetworkResponse:
        """A standalone container of the caller's joins an attachable network (see ``attach``)."""
        node_id = await self._caller(request.node_id, context)
        try:
            return await attach.attach(self.cache, self.writer, node_id, request)
        except attach.AttachError as exc:
            await context.abort(exc.code, str(exc))

    async def DetachNetwork(self, request: dpb.DetachNetworkRequest, context: grpc.aio.ServicerContext) -> dpb.DetachNetworkResponse:
        node_id = await self._caller(request.node_id, context)
        try:
            await attach.detach(self.cache, self.writer, node_id, request.attachment_id)
        except attach.AttachError as exc:
            await context.abort(exc.code, str(exc))
        return dpb.DetachNetworkResponse()


async def _woken(s: Session) -> None:
    """Until the session is woken, or a stop it holds back for the meshes is due anyway."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(None if s.hold_until is None else max(s.hold_until - time.time(), 0)):
            await s.wake.wait()
