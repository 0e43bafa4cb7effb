"""The worker agent: joins the cluster, holds a session with a manager, runs what it is assigned.

A thin composition of its parts: ``NodeIdentity`` (joining, the node certificate and its renewal,
the role), ``Session`` (the stream to a manager: assignments down, heartbeats up, failover),
``TaskManager`` (a controller per assigned task, adoption after a restart) and the ``Reporter``
(task statuses, coalesced, sent while a session lives). Tasks that leave the assignment set are
stopped and their containers deleted (an ended task's log is kept while the task is in the manager's
task history: ``LogKeeper``); when the agent stops, so is everything it runs. With a
``NetAgent`` the node's networking follows the network map the session brings, and is removed when
the agent stops (shutdown, or the node left the cluster).
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from shoal import log
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import dispatcher_pb2_grpc as dgrpc
from shoal.proto import types_pb2 as pb
from shoal.worker.config import AgentConfig, describe
from shoal.worker.executor import Executor
from shoal.worker.files import TaskFiles
from shoal.worker.identity import NodeIdentity, RoleChanged
from shoal.worker.join import JoinError, NodeCredentials
from shoal.worker.logfeed import LogFeed, Sources
from shoal.worker.logkeep import LogKeeper
from shoal.worker.netagent import NetAgent
from shoal.worker.reporter import Reporter
from shoal.worker.session import Session
from shoal.worker.taskmanager import StopIncomplete, TaskManager

_log = log.get(__name__)

__all__ = ["Agent", "AgentConfig", "JoinError", "describe"]


class Agent:
    def __init__(self, cfg: AgentConfig, executor: Executor, network: NetAgent | None = None, files: TaskFiles | None = None) -> None:
        self.cfg = cfg
        self.files = files or TaskFiles()  # secrets and configs for the tasks still to start (memory only)
        self.executor = executor
        self.network = network
        self.reporter = Reporter()
        self.node = NodeIdentity(cfg, describe(cfg))
        self.kept = LogKeeper(executor.kept_logs_dir())  # ended tasks' logs, while in the task history
        self.tasks = TaskManager(executor, self.reporter.report, self.kept)
        self.session = Session(self.node, self.reporter, self._assigned, network.on_map if network else None)
        self.logs = LogFeed(Sources(self._log_tasks, self._log_path, self.node.creds.channel))
        self.session.on_logs = self.logs.apply
        if network is not None:  # standalone containers on cluster networks: the attachments go through a manager
            network.mesh.on_loaded = self.session.mesh_loaded  # the manager waits for it to stop served tasks
            network.attached.attach_rpc = lambda req: self._call_manager("AttachNetwork", req)
            network.attached.detach_rpc = lambda req: self._call_manager("DetachNetwork", req)

    async def _call_manager(self, method: str, request: Any, timeout: float = 30.0) -> Any:
        """One Dispatcher call, to the first known manager that answers (a refusal is final)."""
        failed: grpc.aio.AioRpcError | None = None
        for addr in self.node.managers:
            try:
                async with self.node.creds.channel(addr) as ch:
                    return await getattr(dgrpc.DispatcherStub(ch), method)(request, timeout=timeout)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
                failed = exc
        if failed is not None:
            raise failed
        raise ConnectionError("no manager known")

    def _assigned(self, a: dpb.Assignments) -> None:
        """An assignment set: the secrets and configs it carries first, then the task history (before a
        task leaving the set is deleted: its log may be kept), then the tasks."""
        _log.debug("assignments received", full=a.full, updated=len(a.updated), removed=len(a.removed))
        self.files.apply(a)
        self.kept.apply(a)
        self.tasks.apply(a)

    def _log_tasks(self) -> list[pb.Task]:
        """The tasks ``svc logs`` finds lines of here: those held, and the ended ones whose logs are kept."""
        held = [c.task for c in self.tasks.controllers.values()]
        return held + [t for tid, t in self.kept.tasks.items() if tid not in self.tasks.controllers]

    def _log_path(self, task_id: str) -> str | None:
        return self.kept.log_path(task_id) or self.executor.log_path(task_id)

    @property
    def node_id(self) -> str:
        return self.node.node_id

    @property
    def managers(self) -> list[str]:
        """The managers this node knows (the ones it was given, and the ones the cluster told it)."""
        return self.node.managers

    @property
    def creds(self) -> NodeCredentials:
        return self.node.creds

    @property
    def ready(self) -> asyncio.Event:
        """Set once the first session is up."""
        return self.session.ready

    @property
    def on_role(self) -> RoleChanged | None:
        """Called when the node's role changes (promote/demote): the daemon starts or stops its manager."""
        return self.node.on_role

    @on_role.setter
    def on_role(self, callback: RoleChanged | None) -> None:
        self.node.on_role = callback

    async def run(self) -> None:
        """Join, adopt what an earlier run left, and hold sessions until cancelled; then stop every task.

        A join refused (the node was removed while it was down, its certificate revoked) stops and
        deletes what an earlier run left too: the node is no longer the cluster's, nobody would stop them.
        """
        try:
            await self.node.register()
            self.kept.load()
            leftovers = await self.tasks.load_leftovers()
            async with asyncio.TaskGroup() as tg:
                if self.network is not None:
                    self.network.node_id = self.node_id
                    await self.network.sweep(leftovers)  # wiring whose container is gone
                    tg.create_task(self.network.run())
                tg.create_task(self.reporter.run())
                tg.create_task(self.session.run())
                tg.create_task(self.node.renewals(self.session.restart))
        finally:
            await self._stop_cleanly()

    async def _stop_cleanly(self) -> None:
        """Stop every task, and the node's networking, to the end even when the stop is cancelled once.

        The agent stops on a signal (the cancel that brought it here) or on its own: its session was
        refused (the node was removed, its certificate revoked), a join or a renewal failed. A first
        signal that arrives during such a stop must not cut it short (containers would be left running
        with nobody to stop them): the stop goes on, and only a second cancel abandons it (the daemon
        cancels every task on a second signal).
        """
        stop = asyncio.ensure_future(self._stop_all())
        try:
            await asyncio.shield(stop)
        except asyncio.CancelledError:
            if not stop.done():
                _log.info("stopping: the stop under way finishes first (signal again to leave containers running)")
                await stop
            raise

    async def _stop_all(self) -> None:
        await self.logs.stop()
        try:
            await self.tasks.stop_all()
        except StopIncomplete as exc:
            _log.error("node stopped with containers still running; they are re-adopted at the next start", error=str(exc))
        self.kept.clear()
        if self.network is not None:
            await self.network.cleanup()
