"""The agent's session with a manager: one stream for assignments and heartbeats, failing over.

The agent opens a session with the first manager it can reach (any manager's dispatcher will do) and
keeps it: the manager streams the node's assignments and the heartbeat period down it, the agent
writes a heartbeat up it every period, and task statuses go out beside it (the reporter is attached
while the session lives). When the stream breaks, the agent tries the next known manager, with a
capped backoff between rounds, so a node is back within the cap once any manager is. A session
refused because the node's role changed renews the certificate first; one refused outright is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Callable

import grpc

from shoal import log
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import dispatcher_pb2_grpc as dgrpc
from shoal.proto import logs_pb2 as lpb
from shoal.retry import Backoff
from shoal.worker.identity import NodeIdentity, merge_addrs
from shoal.worker.join import JoinError
from shoal.worker.reporter import Reporter

_log = log.get(__name__)

RECONNECT_FIRST_S = 0.1
RECONNECT_CAP_S = 1.0
"""The longest wait between rounds over the known managers: a node is back this soon after a manager is.
Well inside a new leader's grace (3 heartbeats + the reconnect grace, 4 s by default; shoal.liveness),
so an agent that waited out a long manager outage is back before the leader counts it down."""

Assigned = Callable[[dpb.Assignments], None]
Mapped = Callable[[dpb.NetworkMap], None]


class Ended(enum.Enum):
    """What a session that ended with an error means for the agent."""

    RETRY = "retry"  # the manager went away or broke the stream: try the next one
    RENEW = "renew"  # promoted or demoted: get a certificate of the new role, then reconnect
    REFUSED = "refused"  # this node may not hold a session (removed, wrong cluster): stop


REMOVED = "was removed from the cluster"  # what the manager says to a node whose certificate it revoked


def ended(code: grpc.StatusCode, details: str = "") -> Ended:
    """How to go on after a session ended with ``code`` (and the manager's ``details``)."""
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return Ended.REFUSED
    if code == grpc.StatusCode.PERMISSION_DENIED and REMOVED in details:  # node rm: the node leaves
        return Ended.REFUSED
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return Ended.RENEW
    return Ended.RETRY


def attempt_order(managers: list[str], failed: dict[str, float]) -> list[str]:
    """The order to try managers in: those not known to have failed first (in the given order), then the
    failed ones, longest ago first. A manager that just went away is tried last, not first: an agent that
    lost it goes to a live one at once, even when the dead one is first on every list (a host that vanished
    without closing its connections would hold each round for a connect timeout). Pure."""
    fresh = [a for a in managers if a not in failed]
    return fresh + sorted((a for a in managers if a in failed), key=lambda a: failed[a])


def heartbeat_timeout(period: float) -> float:
    """How long one heartbeat write may hang before the session is restarted: the dispatcher's limit, 3 periods."""
    return max(period * 3, 1.0)


class Session:
    def __init__(self, node: NodeIdentity, reporter: Reporter, assigned: Assigned, mapped: Mapped | None = None) -> None:
        self.node = node
        self.reporter = reporter
        self.assigned = assigned  # called with each assignment set (full or incremental) the manager sends
        self.mapped = mapped  # called with each network map message (before the assignments beside it)
        self.on_logs: Callable[[lpb.LogSubscriptions], None] | None = None  # the live `svc logs` subscriptions
        self.ready = asyncio.Event()  # set once the first session is up
        self.period = 1.0  # heartbeat period, as the manager dictates
        self._call: grpc.aio.StreamStreamCall | None = None
        self.mesh_revision = 0  # the newest map revision whose mesh the node loaded (see ``mesh_loaded``)
        self._mesh_news = asyncio.Event()

    def mesh_loaded(self, revision: int) -> None:
        """The node's mesh follows the map of ``revision`` now: the next heartbeat, sent at once, says so
        (the manager holds back the stop of a task that served through the mesh until every node did)."""
        if revision > self.mesh_revision:
            self.mesh_revision = revision
            self._mesh_news.set()

    def restart(self) -> None:
        """Drop the current session (if any) and start a new one at once: after a certificate renewal."""
        if self._call is not None:
            self._call.cancel()

    async def run(self) -> None:
        """Hold a session with some manager, forever."""
        backoff = Backoff(RECONNECT_FIRST_S, RECONNECT_CAP_S)
        failed: dict[str, float] = {}  # manager -> when its last session broke (or it could not be reached)
        while True:
            for addr in attempt_order(self.node.managers, failed):
                try:
                    await self._session(addr)
                    failed.pop(addr, None)
                    backoff.reset()
                except grpc.aio.AioRpcError as exc:
                    failed[addr] = time.monotonic()
                    how = ended(exc.code(), exc.details() or "")
                    if how is Ended.REFUSED:  # the node leaves: the agent stops and deletes what it runs
                        _log.error("session refused: this node leaves the cluster; its containers are stopped and deleted",
                                   manager=addr, error=exc.details())
                        raise JoinError(f"session refused by {addr}: {exc.details()}") from None
                    if how is Ended.RENEW:
                        _log.info("role changed; renewing the node certificate", manager=addr)
                        await self.node.register(renew=True)
                        backoff.reset()
                        break
                    _log.warning("session ended", manager=addr, code=exc.code().name, error=exc.details())
            await backoff.sleep()

    async def _session(self, addr: str) -> None:
        async with self.node.creds.channel(addr) as ch:
            stub = dgrpc.DispatcherStub(ch)
            call = stub.Session()
            await call.write(dpb.SessionRequest(node_id=self.node.node_id, description=self.node.description))
            self._call = call
            hb: asyncio.Task | None = None
            try:
                async for msg in call:
                    if hb is None:
                        hb = self._established(addr, stub, call, msg)
                    self._received(msg)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if call.cancelled() and task is not None and task.cancelling() == 0:
                    return  # restart() cancelled the call: start a new session
                raise
            finally:
                self._call = None
                self.reporter.detach()
                if hb is not None:
                    hb.cancel()

    def _established(self, addr: str, stub: dgrpc.DispatcherStub, call: grpc.aio.StreamStreamCall, msg: dpb.SessionMessage) -> asyncio.Task:
        """The manager's first message: statuses may flow, heartbeats start. Returns the heartbeat task."""
        self.reporter.attach(stub, self.node.node_id, msg.session_id)
        hb = asyncio.create_task(self._heartbeats(call, msg.heartbeat_period_ns / 1e9))
        self.ready.set()
        _log.info("session established", manager=addr, session=msg.session_id)
        return hb

    def _received(self, msg: dpb.SessionMessage) -> None:
        self.period = msg.heartbeat_period_ns / 1e9 or self.period
        if msg.managers:
            self.node.managers = merge_addrs(msg.managers, self.node.cfg.managers)
        if msg.HasField("network_map") and self.mapped is not None:
            self.mapped(msg.network_map)
        if msg.HasField("assignments"):
            self.assigned(msg.assignments)
        if msg.HasField("log_subscriptions") and self.on_logs is not None:
            self.on_logs(msg.log_subscriptions)

    async def _heartbeats(self, call: grpc.aio.StreamStreamCall, period: float) -> None:
        """Heartbeats as messages on the session stream, at the period the manager's messages carry, and
        at once when the node loaded a mesh (``mesh_loaded``).

        A dead manager breaks the stream (closed connection, or the channel's keepalive pings going
        unanswered); a write that stays stuck 3 periods (the dispatcher's limit) restarts the session.
        """
        self.period = period
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.period):
                    await self._mesh_news.wait()  # a mesh loaded: say so now
            self._mesh_news.clear()
            try:
                async with asyncio.timeout(heartbeat_timeout(self.period)):
                    await call.write(dpb.SessionRequest(mesh_revision=self.mesh_revision))
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError, TimeoutError) as exc:
                _log.warning("heartbeat failed; restarting the session", error=type(exc).__name__)
                call.cancel()
                return
