"""The manager process: etcd (embedded or given), the cache, the gRPC services and the leader's loops.

``Manager.run`` owns every background task in one TaskGroup: if any of them crashes the manager
stops with the error rather than running half-alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import getpass
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from shoal import log, loopwatch, tls
from shoal.certfiles import CertFiles
from shoal.etcdtls import EtcdTLS
from shoal.manager import ca as cluster_ca
from shoal.manager import cluster, localsocket, secretbox
from shoal.manager.allocator.loop import Allocator
from shoal.manager.auth import Authority, ServerCredentials
from shoal.manager.cache import ClusterCache
from shoal.manager.controlapi import ControlAPI
from shoal.manager.dispatcher.register import Registrar
from shoal.manager.dispatcher.service import Dispatcher
from shoal.manager.election import Election
from shoal.manager.images import ImagesServicer, peer_channels
from shoal.manager.ipam import DEFAULT_POOL, DEFAULT_PREFIX, Ipam, IpamError, IpamStore
from shoal.manager.logbroker import LogBroker
from shoal.manager.orchestrator.loop import ReplicatedOrchestrator
from shoal.manager.scheduler.loop import Scheduler
from shoal.manager.sealing import SealError
from shoal.manager.store import objects
from shoal.manager.store.base import LeaseNotFound, Store, StoreError
from shoal.manager.store.writes import Fence, Writer
from shoal.manager.updater.loop import Updater
from shoal.proto import control_pb2_grpc as cgrpc
from shoal.proto import dispatcher_pb2_grpc as dgrpc
from shoal.proto import images_pb2_grpc as igrpc
from shoal.proto import logs_pb2_grpc as lgrpc
from shoal.proto import types_pb2 as pb

_log = log.get(__name__)

def member_ttl(election_ttl: float) -> float:
    """The lease of a manager's status key (``node ls`` shows it Reachable while the key lives).

    Longer than the leader's lease: reachability is for people and for agents' manager lists, and a
    manager whose event loop stalls for a second or two under load must not flicker to Unreachable
    (seen on a loaded 2-core CI machine with the lab's 1 s election TTL). A dead manager shows
    Unreachable within this many seconds.
    """
    return max(5.0, 3 * election_ttl)


SERVER_OPTIONS = [
    ("grpc.keepalive_time_ms", 20000),
    ("grpc.keepalive_timeout_ms", 10000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5000),
]


class ManagerError(Exception):
    """The manager cannot start; the message says why."""


@dataclass
class ManagerConfig:
    data_dir: Path
    node_id: str
    listen_addr: str = "127.0.0.1:4242"
    advertise_addr: str = ""
    socket_path: str = "/run/shoal/manager.sock"
    socket_group: str = ""  # the group that owns the CLI socket (and its directory, when created here)
    etcd_endpoints: list[str] = field(default_factory=list)
    etcd_tls: EtcdTLS | None = None  # the etcd CA and this manager's client certificate (with --etcd)
    heartbeat_period: float = 1.0
    reconnect_grace: float = 1.0  # a closed session's node is down unless it reconnects within this
    election_ttl: float = 2.0  # etcd leases are whole seconds; 2 s is the least etcd grants with its default timing
    history_limit: int = 5
    ca_kek: bytes | None = None  # received when this manager joined an existing cluster
    default_addr_pool: str = DEFAULT_POOL  # --default-addr-pool: only used when this manager creates the cluster
    default_addr_pool_mask_length: int = 0  # --default-addr-pool-mask-length (0: /24 node and network subnets)


class Manager:
    def __init__(self, cfg: ManagerConfig) -> None:
        self.cfg = cfg
        self.store: Store | None = None
        self.cache: ClusterCache | None = None
        self.cluster_obj: pb.Cluster | None = None
        self.created_cluster = False  # this start created the cluster (its tokens are printed only then)
        self.election: Election | None = None
        self.server: grpc.aio.Server | None = None
        self.ca: cluster_ca.CertificateAuthority | None = None
        self.secret_box: secretbox.SecretBox | None = None  # the cluster data key, in memory only
        self.authority: Authority | None = None
        self.dispatcher: Dispatcher | None = None
        self.started = asyncio.Event()
        self._etcd = None
        self.etcd_endpoints: list[str] = []  # recorded in this manager's status: a promoted node's manager uses them

    @property
    def advertise(self) -> str:
        return self.cfg.advertise_addr or self.cfg.listen_addr

    async def _open_store(self) -> Store:
        from shoal.manager.store.etcd import connect

        endpoints, etcd_tls = self.cfg.etcd_endpoints, self.cfg.etcd_tls
        try:
            if not endpoints:
                from shoal.manager.store.embedded import EmbeddedEtcd

                self._etcd = EmbeddedEtcd(self.cfg.data_dir)
                await self._etcd.start()
                endpoints, etcd_tls = [self._etcd.endpoint], self._etcd.client_tls
            self.etcd_endpoints = list(self.cfg.etcd_endpoints)  # not an embedded etcd: it lives and dies with this process
            return await connect(endpoints, tls=etcd_tls)
        except (StoreError, ValueError) as exc:
            raise ManagerError(str(exc)) from None

    @property
    def certs(self) -> CertFiles:
        """This manager's node certificate (its agent uses the same one)."""
        return CertFiles(self.cfg.data_dir / "certificates")

    async def _setup_ca(self) -> None:
        """Load (or create) the cluster CA; make sure this manager and the local admin have certificates."""
        assert self.store
        try:
            mask = self.cfg.default_addr_pool_mask_length or DEFAULT_PREFIX
            Ipam.create(self.cfg.default_addr_pool, mask, mask)
        except IpamError as exc:
            raise ManagerError(f"--default-addr-pool: {exc}") from None
        try:
            self.ca = await cluster_ca.ensure(self.store, self.certs.dir, self.cfg.ca_kek)
        except cluster_ca.CAError as exc:
            raise ManagerError(str(exc)) from None
        self.cluster_obj, self.created_cluster = await cluster.ensure(
            self.store, self.ca.digest, self.ca.kek, self.cfg.default_addr_pool, self.cfg.default_addr_pool_mask_length
        )
        try:
            self.secret_box = await secretbox.ensure(self.store, self.ca.kek)
        except SealError as exc:
            raise ManagerError(str(exc)) from None
        cid = self.cluster_obj.id
        if cluster_ca.needs_new_cert(self.certs, self.ca, self.cfg.node_id, "manager"):
            self.ca.issue_files(self.certs, self.cfg.node_id, "manager", cid)
        admin = CertFiles(self.certs.dir, "admin")
        if not admin.exists() or not tls.issued_by(admin.cert.read_bytes(), self.ca.cert_pem):
            self.ca.issue_files(admin, f"admin-{getpass.getuser()}", "admin", cid, dt.timedelta(days=365))
        self.authority = Authority(self.ca.cert_pem, self.ca.join_ca_pem, cid)

    def address_plan(self) -> IpamStore:
        """The cluster's address plan in the store (its pool comes from the cluster object)."""
        assert self.store
        c = self.cluster_obj
        pool = c.default_addr_pool if c is not None else ""
        mask = c.default_addr_pool_mask_length if c is not None else self.cfg.default_addr_pool_mask_length
        return IpamStore(self.store, pool or self.cfg.default_addr_pool, mask or DEFAULT_PREFIX)

    async def _current_cluster(self) -> pb.Cluster:
        assert self.store
        assert self.ca
        c = await cluster.load(self.store, self.ca.kek)
        if c is not None:
            self.cluster_obj = c
        return self.cluster_obj  # type: ignore[return-value]  # set by start() (cluster.ensure) before anything serves

    async def _serve(self, control: ControlAPI, dispatcher: Dispatcher) -> None:
        assert self.authority and self.ca
        server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=[self.authority.interceptor()])
        cgrpc.add_ControlServicer_to_server(control, server)
        dgrpc.add_DispatcherServicer_to_server(dispatcher, server)
        assert self.store and self.cache
        lgrpc.add_LogsServicer_to_server(LogBroker(self.store, self.cache, self.authority, lambda: self.advertise), server)
        self.images = ImagesServicer(self.store, self.cfg.data_dir, self.cfg.node_id)
        igrpc.add_ImagesServicer_to_server(self.images, server)
        try:
            creds = ServerCredentials(self.certs, self.ca.cert_pem, self.ca.join_ca_pem).credentials()
            port = server.add_secure_port(self.cfg.listen_addr, creds)
        except RuntimeError:
            port = 0
        if not port:
            raise ManagerError(f"cannot listen on {self.cfg.listen_addr} (address in use?)")
        sock, group = self.cfg.socket_path, self.cfg.socket_group
        try:
            if sock:
                localsocket.prepare(sock, group)
                with localsocket.restrictive_umask():  # grpc binds here: the socket is never wider than 0660
                    server.add_insecure_port(f"unix:{sock}")
            await server.start()
            if sock:
                localsocket.finish(sock, group)
        except localsocket.SocketError as exc:
            await server.stop(0)
            raise ManagerError(str(exc)) from None
        self.server = server

    @property
    def node_grace_s(self) -> float:
        """How long a node may go without a session before it is down: 3 missed heartbeats, then the reconnect grace."""
        return self.cfg.heartbeat_period * 3 + self.cfg.reconnect_grace

    async def _lead(self, fence: Fence) -> None:
        assert self.store and self.cache
        writer = Writer(self.store, fence)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(ReplicatedOrchestrator(self.cache, writer, self.cfg.history_limit, self.node_grace_s).run())
            tg.create_task(Scheduler(self.cache, writer).run())
            tg.create_task(Allocator(self.cache, writer, self.address_plan()).run())
            tg.create_task(Updater(self.cache, writer).run())

    async def run(self) -> None:
        """Start everything and serve until cancelled."""
        try:
            self.store = await self._open_store()
            await self._setup_ca()
            self.cache = ClusterCache(self.store)
            self.election = Election(self.store, self.cfg.node_id, self.cfg.election_ttl)
            control = ControlAPI(
                self.store, self.cache, lambda: self.election.leader_id, lambda: self.cluster_obj, image_known=lambda ref: self.images.known(ref),
                unknown_window_s=self.node_grace_s,  # until agents had the time to reconnect here
                plan=self.address_plan(),
                kek=lambda: self.ca.kek, caller=lambda ctx: self.authority.identity(ctx).node_id,  # type: ignore[union-attr]  # ca and authority are set before leadership starts the dispatcher
                secret_box=lambda: self.secret_box,
            )
            control.image_hint = lambda ref: self.images.similar(ref)  # type: ignore[union-attr]  # set by _serve before any call
            control.self_id = self.cfg.node_id
            assert self.authority
            self.authority.revoked = lambda node_id: self.cache.get("tombstone", node_id) is not None  # type: ignore[union-attr]  # the cache is set before leadership starts the dispatcher
            dispatcher = self.dispatcher = Dispatcher(self.store, self.cache, self.cfg.node_id, self.authority, None, self.cfg.heartbeat_period, reconnect_grace=self.cfg.reconnect_grace, secret_box=lambda: self.secret_box)  # type: ignore[arg-type]  # the registrar is set on the next line (it needs the dispatcher's methods)
            dispatcher.registrar = Registrar(
                self.store, self.authority, lambda: self.ca, self._current_cluster, dispatcher.managers, dispatcher.manager_statuses,  # type: ignore[arg-type]  # the CA is set before leadership starts the registrar
                etcd_client=self._etcd_client,
            )  # fmt: skip
            async with asyncio.TaskGroup() as tg:
                if (watch := loopwatch.from_env()) is not None:  # SHOAL_LOOP_WATCH_S: where the loop stalls
                    tg.create_task(watch.run())
                tg.create_task(self.cache.run())
                await self.cache.ready.wait()
                await self._serve(control, dispatcher)
                tg.create_task(dispatcher.run())
                tg.create_task(self.images.replicate(peer_channels(self.certs)))  # layer blobs on every manager
                tg.create_task(self._keep_member(await self._announce_on_new_lease()))
                tg.create_task(self.election.run(self._lead))
                _log.info("manager ready", listen=self.cfg.listen_addr, socket=self.cfg.socket_path, node=self.cfg.node_id)
                self.started.set()
        finally:
            await self._shutdown()

    def _etcd_client(self) -> tuple[bytes, bytes, bytes] | None:
        """The etcd CA and client certificate of a shared etcd (--etcd), for a manager being promoted."""
        t = self.cfg.etcd_tls
        return t.load() if self.cfg.etcd_endpoints and t is not None and t.exists() else None

    async def _announce(self, lease: int) -> None:
        """This manager's status key, on ``lease``: it goes when this manager does."""
        assert self.store
        await Writer(self.store).apply(objects.managers.put(self._status(), self.cfg.node_id, lease=lease))

    def _status(self) -> pb.ManagerStatus:
        return pb.ManagerStatus(addr=self.advertise, etcd_endpoints=self.etcd_endpoints)

    async def _announce_on_new_lease(self) -> int:
        """Grant a membership lease and put this manager's status key on it. A lease that expired before the
        put arrived (the event loop stalled for longer than its TTL: a loaded machine, the cgroup-v2 test VM
        under emulation) is granted anew; it used to take the manager down ("requested lease not found")."""
        assert self.store
        while True:
            lease = await self.store.lease_grant(member_ttl(self.cfg.election_ttl))
            try:
                await self._announce(lease)
                return lease
            except LeaseNotFound:
                _log.warning("manager membership lease expired before its first use; granting another")

    async def _keep_member(self, lease: int) -> None:
        assert self.store
        while True:
            await asyncio.sleep(member_ttl(self.cfg.election_ttl) / 5)
            try:
                await self.store.lease_refresh(lease)
            except StoreError:  # expired while this manager was busy: announce it again on a new lease
                _log.warning("manager membership lease lost; re-announcing")
                lease = await self._announce_on_new_lease()

    async def _shutdown(self) -> None:
        if self.server is not None:
            await self.server.stop(0.5)
            self.server = None
        if self.store is not None:
            with contextlib.suppress(Exception):
                await self.store.close()
        if self._etcd is not None:
            await self._etcd.stop()
            self._etcd = None
        localsocket.remove(self.cfg.socket_path)
