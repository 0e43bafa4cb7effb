"""Register: how a node joins (token + CSR) or refreshes its record and certificate (node cert).

A caller holding only a join certificate must present a valid join token; it always becomes a new
node (a fresh id chosen here, never the one it asks for) with the token's role. A caller holding a
node certificate is that node, and only it may refresh that node's record: it may update its
description and, with a CSR, renew its certificate. The role of a renewed certificate follows the
record only where that cannot raise a privilege behind the control API's back: a worker becomes a
manager only when its record carries a role grant an admin made through the control API (its MAC
is keyed from the KEK, which etcd never holds); a demotion is always honoured. A removed node
(tombstoned) is refused. Managers also receive the key that unseals the CA key, so any manager can
sign.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable

import grpc
from cryptography.hazmat.primitives.asymmetric import ec

from shoal import log, tls
from shoal.ids import new_id
from shoal.manager import sealing
from shoal.manager.auth import Authority, Identity, refusal
from shoal.manager.ca import CertificateAuthority
from shoal.manager.cluster import usable_etcd_endpoints
from shoal.manager.dispatcher.admission import Admission, Busy
from shoal.manager.store import objects
from shoal.manager.store.base import Store
from shoal.manager.store.writes import Conflict, Writer
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb

_log = log.get(__name__)
ROLE_NAMES = {pb.NodeSpec.WORKER: "worker", pb.NodeSpec.MANAGER: "manager"}


def _matches(token: str, stored_hash: bytes, clear: str) -> bool:
    if stored_hash:
        return sealing.token_matches(token, stored_hash)
    return bool(clear) and hmac.compare_digest(token.strip().encode(), clear.encode())  # a cluster object not yet migrated


def token_check(token: str, cluster: pb.Cluster) -> tuple[int | None, str]:
    """(role, "") for a valid token, (None, why) otherwise. Pure; secrets compared in constant time."""
    try:
        digest, _secret = tls.parse_token(token)
    except tls.TokenError as exc:
        return None, str(exc)
    if digest != cluster.ca_digest:
        return None, "invalid join token: it is for another cluster (its CA digest does not match this cluster's CA)"
    if _matches(token, cluster.manager_token_hash, cluster.manager_token):
        return pb.NodeSpec.MANAGER, ""
    if _matches(token, cluster.worker_token_hash, cluster.worker_token):
        return pb.NodeSpec.WORKER, ""
    return None, "invalid join token (wrong, or rotated out: get the current one with `shoal join-token`)"


def renewal_role(cert_role: int, node: pb.Node | None, kek: bytes) -> int:
    """The role a known node's refreshed certificate gets. Pure.

    Lower than the certificate's: always (a demotion). Higher: only with a valid role grant.
    """
    if node is None:
        return cert_role
    want = node.spec.role
    if want == pb.NodeSpec.MANAGER and cert_role != pb.NodeSpec.MANAGER:
        return want if sealing.grant_valid(kek, node.id, node.role_grant, want) else cert_role
    return want


class Registrar:
    def __init__(
        self,
        store: Store,
        authority: Authority,
        ca: Callable[[], CertificateAuthority],
        cluster: Callable[[], Awaitable[pb.Cluster]],
        managers: Callable[[], list[str]],
        manager_statuses: Callable[[], list[pb.ManagerStatus]] = list,
        admission: Admission | None = None,
        cluster_ttl: float = 1.0,
        etcd_client: Callable[[], tuple[bytes, bytes, bytes] | None] = lambda: None,
    ) -> None:
        self.store = store
        self.authority = authority
        self.ca = ca
        self._read_cluster = cluster
        self.cluster_ttl = cluster_ttl  # a token rotated out on another manager works here this long at most
        self._cluster: tuple[float, pb.Cluster] | None = None
        self.admission = admission or Admission()
        self.etcd_client = etcd_client  # (etcd CA, client cert, key) the managers use: a promoted node's manager needs it
        self.managers = managers
        self.manager_statuses = manager_statuses  # their etcd endpoints go to a (promoted) manager

    async def cluster(self, fresh: bool = False) -> pb.Cluster:
        """The cluster object, read from the store at most once per ``cluster_ttl`` (or now, ``fresh``)."""
        now = time.monotonic()
        if fresh or self._cluster is None or now - self._cluster[0] > self.cluster_ttl:
            self._cluster = (now, await self._read_cluster())
        return self._cluster[1]

    async def register(self, request: dpb.RegisterRequest, context: grpc.aio.ServicerContext) -> dpb.RegisterResponse:
        ident = self.authority.identity(context)
        if ident.role == "join" and not self.admission.allow(context.peer()):
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many join attempts from this address; retry later")
        try:
            async with self.admission.slot():
                return await self._register(ident, request, context)
        except Busy as exc:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
            raise  # abort raises; this line only tells type checkers so

    async def _who(self, ident: Identity, request: dpb.RegisterRequest, c: pb.Cluster, context: grpc.aio.ServicerContext) -> tuple[str, int]:
        """(node id, role asked for) of the caller, or abort."""
        if ident.role == "join":
            role, why = token_check(request.token, c)
            if role is None:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, why)
            if not request.csr:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a join needs a certificate signing request")
            return new_id(), role  # never the caller's choice: naming a known node must not take it over
        if ident.role not in ("worker", "manager"):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal(ident, "/shoal.v1.Dispatcher/Register"))
        node_id = ident.node_id
        if request.node_id and request.node_id != node_id:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"this certificate is for node {node_id}, not {request.node_id}")
        if await objects.tombstones.get(self.store, node_id) is not None:  # the store itself: the cache may lag a removal
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal(Identity("", node_id, revoked=True), "Register"))
        return node_id, pb.NodeSpec.MANAGER if ident.role == "manager" else pb.NodeSpec.WORKER

    async def _register(self, ident: Identity, request: dpb.RegisterRequest, context: grpc.aio.ServicerContext) -> dpb.RegisterResponse:
        c = await self.cluster()
        if ident.role == "join" and token_check(request.token, c)[0] is None:
            c = await self.cluster(fresh=True)  # maybe a token rotated in on another manager a moment ago
        node_id, role = await self._who(ident, request, c, context)
        pubkey = None
        if request.csr:
            try:
                pubkey = tls.csr_public_key(request.csr)
            except ValueError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        ca = self.ca()
        role, cert = await self._write_node(node_id, role, request, context, pubkey, c.id, joined=ident.role == "join")
        resp = dpb.RegisterResponse(node_id=node_id, role=role, managers=self.managers(), ca_certificate=ca.cert_pem)  # type: ignore[arg-type]  # protobuf stubs type enum fields as Role; the role arrives as its int value
        if cert:
            resp.certificate = cert
            if role == pb.NodeSpec.MANAGER:
                resp.ca_key_kek = ca.kek
                resp.etcd_endpoints.extend(usable_etcd_endpoints(self.manager_statuses(), request.description.addr or context.peer()))
                creds = self.etcd_client()
                if creds is not None:
                    resp.etcd_ca, resp.etcd_cert, resp.etcd_key = creds
        _log.info("node registered", node=node_id, role=ROLE_NAMES[role], how=ident.role, certificate=bool(cert))
        return resp

    async def _write_node(
        self, node_id: str, role: int, request: dpb.RegisterRequest, context: grpc.aio.ServicerContext,
        pubkey: ec.EllipticCurvePublicKey | None, cluster_id: str, joined: bool,
    ) -> tuple[int, bytes]:  # fmt: skip
        """Create (a join) or refresh the node's record, issuing its certificate (whose serial the record keeps).

        Returns the role granted and the certificate (empty without a CSR).
        """
        ca = self.ca()
        granted, cert = role, b""

        def refreshed(node: pb.Node | None) -> pb.Node:
            nonlocal granted, cert
            now = time.time_ns()
            if node is not None and joined:
                raise Conflict(f"node id {node_id} is taken")  # a fresh id: cannot happen short of a broken RNG
            granted = role if joined else renewal_role(role, node, ca.kek)
            if node is None:
                node = pb.Node(id=node_id)
                node.spec.availability = request.availability
                node.meta.created_at_ns = now
            node.spec.role = granted  # type: ignore[assignment]  # protobuf stubs type enum fields as Role; granted is its int value
            node.description.CopyFrom(request.description)
            if not node.description.addr:
                node.description.addr = context.peer().removeprefix("ipv4:")
            node.meta.updated_at_ns = now
            if pubkey is not None:
                cert = ca.issue(pubkey, node_id, ROLE_NAMES[granted], cluster_id)  # type: ignore[index]  # ROLE_NAMES is keyed by Role; granted is its int value
                node.cert_serial = format(tls.cert_info(cert).serial, "x")
            return node

        try:
            await objects.nodes.update_retrying(Writer(self.store), node_id, refreshed, attempts=5)
        except Conflict:
            await context.abort(grpc.StatusCode.ABORTED, "node record changed concurrently; retry")
        return granted, cert
