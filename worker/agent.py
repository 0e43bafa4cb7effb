"""The worker agent: joins with a token, holds a session with a manager, runs what it is assigned.

It keeps one TaskController per assigned task, reports every transition through the Reporter, sends
heartbeats at the period the manager dictates, and reconnects (to any known manager) when the session
breaks. Tasks that leave the assignment set are stopped and their containers deleted.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from shoal import __version__, log
from shoal.certfiles import CertFiles
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import dispatcher_pb2_grpc as dgrpc
from shoal.proto import types_pb2 as pb
from shoal.retry import Backoff
from shoal.worker import adopt
from shoal.worker.controller import TaskController
from shoal.worker.executor import Executor
from shoal.worker.join import JoinError, NodeCredentials, join, register, renewal_due
from shoal.worker.reporter import Reporter

_log = log.get(__name__)

__all__ = ["Agent", "AgentConfig", "JoinError"]

@dataclass
class AgentConfig:
    managers: list[str]
    token: str
    data_dir: Path
    hostname: str = ""
    node_id: str = ""  # preset (the manager's own agent uses the manager's id)
    availability: int = pb.NodeSpec.ACTIVE  # for the first join only
    engine_labels: dict[str, str] = field(default_factory=dict)
    certs_dir: Path | None = None  # default: <data_dir>/certificates


def describe(cfg: AgentConfig) -> pb.NodeDescription:
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    d = pb.NodeDescription(
        hostname=cfg.hostname or socket.gethostname(),
        platform_os=platform.system().lower(),
        platform_arch=platform.machine(),
        nano_cpus=(os.cpu_count() or 1) * 10**9,
        memory_bytes=mem,
    )
    d.engine_labels.update({"shoal.version": __version__, **cfg.engine_labels})
    return d


class Agent:
    def __init__(self, cfg: AgentConfig, executor: Executor) -> None:
        self.cfg = cfg
        self.executor = executor
        self.reporter = Reporter()
        self.controllers: dict[str, TaskController] = {}
        self.node_id = cfg.node_id
        self.managers = list(cfg.managers)
        self.description = describe(cfg)
        self.ready = asyncio.Event()  # set once the first session is up
        self._bg: set[asyncio.Task] = set()
        self.creds = NodeCredentials(CertFiles(cfg.certs_dir or cfg.data_dir / "certificates"))
        self._call: grpc.aio.Call | None = None
        self._period = 1.0  # heartbeat period, as the manager dictates
        self._leftovers: set[str] | None = None
        self.role: int | None = None  # the role of this node's certificate, once known
        # called when the node's role changes (promote/demote), with the Register answer that carried
        # the new certificate (a manager's also carries the CA key's KEK); the daemon starts or stops
        # its manager there
        self.on_role: Callable[[int, dpb.RegisterResponse], None] | None = None

    # ---- identity ----------------------------------------------------------------------------
    def _identity_file(self) -> Path:
        return self.cfg.data_dir / "node.json"

    async def _register(self, renew: bool = False) -> None:
        """Join with the token when this node has no valid certificate, else refresh its record."""
        f = self._identity_file()
        if not self.node_id and f.exists():
            self.node_id = json.loads(f.read_text())["node_id"]
        backoff = Backoff(0.2, 2.0)
        while True:
            for addr in self.managers:
                req = dpb.RegisterRequest(node_id=self.node_id, description=self.description, availability=self.cfg.availability)
                try:
                    if self.creds.valid():
                        resp = await register(self.creds, addr, req, renew)
                    else:
                        resp = await join(addr, self.cfg.token, self.creds.files, req)
                    if not renew and resp.role != self._cert_role():  # promoted or demoted while away: a certificate of the new role
                        resp = await register(self.creds, addr, req, True)
                    self.node_id = resp.node_id
                    self.managers = list(dict.fromkeys(self.managers + list(resp.managers)))
                    self.cfg.data_dir.mkdir(parents=True, exist_ok=True)
                    f.write_text(json.dumps({"node_id": self.node_id}))
                    _log.info("joined the cluster", node=self.node_id, role=pb.NodeSpec.Role.Name(resp.role), manager=addr)
                    self._role(resp)
                    return
                except grpc.aio.AioRpcError as exc:
                    if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT):
                        raise JoinError(f"join refused by {addr}: {exc.details()}") from None
                    _log.warning("cannot reach manager; retrying", manager=addr, error=exc.details())
                except OSError as exc:
                    _log.warning("cannot reach manager; retrying", manager=addr, error=str(exc))
            await backoff.sleep()

    def _cert_role(self) -> int:
        return pb.NodeSpec.MANAGER if self.creds.valid() and self.creds.info().role == "manager" else pb.NodeSpec.WORKER

    def _role(self, resp: dpb.RegisterResponse) -> None:
        """Note the role the certificate now holds; tell the daemon when it changed."""
        if resp.role == self.role:
            return
        before, self.role = self.role, resp.role
        _log.info("node role", role=pb.NodeSpec.Role.Name(resp.role), before=pb.NodeSpec.Role.Name(before) if before is not None else "")
        if self.on_role is not None:
            self.on_role(resp.role, resp)

    async def _renewals(self) -> None:
        """Renew the node certificate between 50% and 80% of its life; new sessions use the new one."""
        while True:
            await asyncio.sleep(max(renewal_due(self.creds.info()), 1.0))
            await self._register(renew=True)
            if self._call is not None:
                self._call.cancel()  # reconnect at once with the new certificate

    # ---- main loop ---------------------------------------------------------------------------
    async def run(self) -> None:
        await self._register()
        self._leftovers = set(await self.executor.list())  # containers an earlier run left: adopted on the first full set
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.reporter.run())
                tg.create_task(self._sessions())
                tg.create_task(self._renewals())
        finally:
            await self._stop_all()

    async def _sessions(self) -> None:
        backoff = Backoff(0.1, 2.0)  # the cap bounds how long a node stays away once a manager is back
        while True:
            for addr in list(self.managers):
                try:
                    await self._session(addr)
                    backoff.reset()
                except grpc.aio.AioRpcError as exc:
                    if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                        raise JoinError(f"session refused by {addr}: {exc.details()}") from None
                    if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:  # promoted or demoted: a certificate of the new role
                        _log.info("role changed; renewing the node certificate", manager=addr)
                        await self._register(renew=True)
                        backoff.reset()
                        break
                    _log.warning("session ended", manager=addr, code=exc.code().name, error=exc.details())
            await backoff.sleep()

    async def _session(self, addr: str) -> None:
        async with self.creds.channel(addr) as ch:
            stub = dgrpc.DispatcherStub(ch)
            call = stub.Session()
            await call.write(dpb.SessionRequest(node_id=self.node_id, description=self.description))
            self._call = call
            hb: asyncio.Task | None = None
            try:
                async for msg in call:
                    if hb is None:
                        self.reporter.attach(stub, self.node_id, msg.session_id)
                        hb = asyncio.create_task(self._heartbeats(call, msg.heartbeat_period_ns / 1e9))
                        self.ready.set()
                        _log.info("session established", manager=addr, session=msg.session_id)
                    self._period = msg.heartbeat_period_ns / 1e9 or self._period
                    if msg.managers:
                        self.managers = list(dict.fromkeys(list(msg.managers) + self.cfg.managers))
                    if msg.HasField("assignments"):
                        self._apply(msg.assignments)
            except asyncio.CancelledError:
                if call.cancelled() and asyncio.current_task().cancelling() == 0:  # type: ignore[union-attr]
                    return  # the renewal cancelled the call: start a new session
                raise
            finally:
                self._call = None
                self.reporter.detach()
                if hb is not None:
                    hb.cancel()

    async def _heartbeats(self, call: grpc.aio.StreamStreamCall, period: float) -> None:
        """Heartbeats as messages on the session stream, at the period the manager's messages carry.

        A dead manager breaks the stream (closed connection, or the channel's keepalive pings going
        unanswered); a write that stays stuck 3 periods (the dispatcher's limit) restarts the session.
        """
        self._period = period
        while True:
            await asyncio.sleep(self._period)
            try:
                await asyncio.wait_for(call.write(dpb.SessionRequest()), max(self._period * 3, 1.0))
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError, TimeoutError) as exc:
                _log.warning("heartbeat failed; restarting the session", error=type(exc).__name__)
                call.cancel()
                return

    # ---- assignments -------------------------------------------------------------------------
    def _spawn(self, coro, what: str) -> None:
        t = asyncio.create_task(coro)
        self._bg.add(t)

        def done(t: asyncio.Task) -> None:
            self._bg.discard(t)
            if not t.cancelled() and t.exception() is not None:
                _log.error("agent task crashed", what=what, error=repr(t.exception()))

        t.add_done_callback(done)

    def _adopt(self, a: dpb.Assignments) -> None:
        """First full set after a start: re-attach to the containers that kept running."""
        leftovers, self._leftovers = self._leftovers or set(), None
        tasks = {t.id: t for t in a.updated}
        p = adopt.plan({tid: t.status.state for tid, t in tasks.items()}, leftovers)
        for tid in p.remove:
            self._spawn(self._stop_one(tid), f"remove leftover {tid}")
        for tid, state in p.adopt.items():
            ctl = TaskController(tasks[tid], self.executor, self.reporter.report, observed=state)
            ctl.container = True
            self.controllers[tid] = ctl
            self._spawn(ctl.run(), f"task {tid}")
            _log.info("re-adopted a running container", task=tid, state=pb.TaskState.Name(state))
        for tid in p.lost:
            ctl = TaskController(tasks[tid], self.executor, self.reporter.report, observed=tasks[tid].status.state)
            self.controllers[tid] = ctl
            ctl.lost("container lost while the agent was down")

    def _apply(self, a: dpb.Assignments) -> None:
        if a.full and self._leftovers is not None:
            self._adopt(a)
        if a.full:
            keep = {t.id for t in a.updated}
            for tid in [tid for tid in self.controllers if tid not in keep]:
                self._remove(tid)
        for t in a.updated:
            ctl = self.controllers.get(t.id)
            if ctl is not None:
                ctl.update(t)
            else:
                ctl = TaskController(t, self.executor, self.reporter.report)
                self.controllers[t.id] = ctl
                self._spawn(ctl.run(), f"task {t.id}")
        for tid in a.removed:
            self._remove(tid)

    def _remove(self, task_id: str) -> None:
        ctl = self.controllers.pop(task_id, None)
        if ctl is not None:
            self._spawn(ctl.remove(), f"remove {task_id}")

    async def _stop_all(self) -> None:
        """The agent is stopping: stop and delete every container it runs, leaving nothing behind."""
        for t in list(self._bg):
            t.cancel()
        ids = set(self.controllers) | set(await self.executor.list())
        await asyncio.gather(*(self._stop_one(tid) for tid in ids), return_exceptions=True)
        self.controllers.clear()

    async def _stop_one(self, tid: str) -> None:
        await self.executor.stop(tid, 2.0)
        await self.executor.remove(tid)
