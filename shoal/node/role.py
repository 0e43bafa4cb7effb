"""A node's manager follows its role: ``node promote`` starts one in the running node, ``demote`` stops it.

The agent learns a role change when the dispatcher ends its session (the certificate it holds names
the old role) and renews its certificate: the Register answer of a promoted node carries a manager
certificate, the key (KEK) that unseals the CA key and the etcd endpoints the managers record that
this node can reach. The agent then calls ``on_role``; this starts a Manager in the same process on
those endpoints, or stops it after a demote and forgets the KEK. ``shoal manager`` and
``shoal worker`` both compose their Agent with one of these; the manager and worker packages never
import each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import replace
from pathlib import Path

from shoal import etcdtls, log
from shoal.manager import ca as cluster_ca
from shoal.manager.server import Manager, ManagerConfig
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.worker.join import split_addr

_log = log.get(__name__)


class ManagerRole:
    """Runs this node's Manager while the node is a manager.

    ``base`` is the configuration a promotion starts from (listen address, socket, data dir); the
    KEK and the etcd endpoints come in the Register answer that renewed the certificate (a
    ``shoal manager`` keeps its own ``--etcd``).
    """

    def __init__(self, base: ManagerConfig) -> None:
        self.base = base
        self.manager: Manager | None = None
        self.task: asyncio.Task | None = None
        self.failed: asyncio.Future = asyncio.get_running_loop().create_future()  # a manager that could not start
        self._pending: asyncio.Task | None = None

    def adopt(self, mgr: Manager, task: asyncio.Task) -> None:
        """The manager ``shoal manager`` started itself: a demote stops it like a promoted one."""
        self.manager, self.task = mgr, task
        task.add_done_callback(self._ended)

    def on_role(self, role: int, resp: dpb.RegisterResponse) -> None:
        """The agent's callback: start or stop the manager (in the background)."""
        if self._pending is not None:
            self._pending.cancel()
        coro = self._promote(resp) if role == pb.NodeSpec.MANAGER else self._demote()
        self._pending = asyncio.get_running_loop().create_task(coro)
        self._pending.add_done_callback(self._ended)

    async def _promote(self, resp: dpb.RegisterResponse) -> None:
        if self.task is not None and not self.task.done():
            return  # already running (a `shoal manager`, or a repeated notice)
        endpoints, kek = list(resp.etcd_endpoints), resp.ca_key_kek
        etcd_tls = self.base.etcd_tls
        if not self.base.etcd_endpoints and resp.etcd_cert:  # the managers' etcd client certificate, kept 0600
            etcd_tls = etcdtls.files(self.base.data_dir / "etcd-client", "client")
            etcd_tls.save(resp.etcd_ca, resp.etcd_cert, resp.etcd_key)
        # the node id is the one the cluster gave at the join (the base's may predate it)
        cfg = replace(
            self.base, node_id=resp.node_id or self.base.node_id, etcd_endpoints=self.base.etcd_endpoints or endpoints,
            etcd_tls=etcd_tls, ca_kek=kek or None,
        )  # fmt: skip
        if not cfg.etcd_endpoints:  # the control API refuses such a promote; a record changed behind its back
            _log.error("promoted, but no etcd endpoint of the cluster is reachable from this node: no manager started")
            return
        mgr = Manager(cfg)
        _log.info("promoted: starting the manager", listen=cfg.listen_addr, etcd=",".join(cfg.etcd_endpoints))
        self.manager, self.task = mgr, asyncio.get_running_loop().create_task(mgr.run())
        self.task.add_done_callback(self._ended)

    async def _demote(self) -> None:
        # Forget the KEK first (a worker keeps no key to the CA; the running manager unsealed the CA
        # key at start and needs the file no more), so the key is gone by the time the manager is.
        kek = cluster_ca.kek_path(self.base.data_dir / "certificates")
        with contextlib.suppress(FileNotFoundError):
            kek.unlink()
        task, self.task = self.task, None
        if task is not None and not task.done():
            _log.info("demoted: stopping the manager")
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.manager = None

    def _ended(self, task: asyncio.Task) -> None:
        """A manager (or a promote/demote in progress) that failed stops the node with its error."""
        if task.cancelled() or self.failed.done():
            return
        if task.exception() is not None:
            _log.error("the node's manager failed", error=str(task.exception()))
            self.failed.set_exception(task.exception())  # type: ignore[arg-type]  # only reached for a task that raised (exception() is not None)

    async def watch(self) -> None:
        """Raise what made a manager of this node fail (ManagerError: a bad address, no etcd...)."""
        await self.failed

    async def stop(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


def manager_data_dir(data_dir: Path) -> Path:
    """Where a promoted worker keeps its manager's state (certificates, KEK, image blobs)."""
    return data_dir / "manager"


def default_listen(manager_addr: str, port: int = 4242) -> str:
    """This node's address towards ``manager_addr`` (the one the managers see), on ``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(split_addr(manager_addr))  # no packet is sent: this only picks the route's source address
        return f"{s.getsockname()[0]}:{port}"
