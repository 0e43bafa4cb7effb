"""Register: how a node joins (token + CSR) or refreshes its record and certificate (node cert).

A caller holding only a join certificate must present a valid join token; it always becomes a new
node (a fresh id chosen here, never the one it asks for) with the token's role. A caller holding a
node certificate is that node, and only it may refresh that node's record: it may update its
description and, with a CSR, renew its certificate (in the role its record holds: promote/demote
change it). Managers also receive the key that unseals the CA key, so any
manager can sign.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import grpc

from shoal import log, tls
from shoal.ids import new_id
from shoal.manager.auth import Authority
from shoal.manager.ca import CertificateAuthority
from shoal.manager.cluster import token_roles, usable_etcd_endpoints
from shoal.manager.store import objects
from shoal.manager.store.base import Store
from shoal.manager.store.writes import Conflict, Writer
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb

_log = log.get(__name__)
ROLE_NAMES = {pb.NodeSpec.WORKER: "worker", pb.NodeSpec.MANAGER: "manager"}


def token_check(token: str, cluster: pb.Cluster) -> tuple[int | None, str]:
    """(role, "") for a valid token, (None, why) otherwise. Pure."""
    try:
        digest, _secret = tls.parse_token(token)
    except tls.TokenError as exc:
        return None, str(exc)
    if digest != cluster.ca_digest:
        return None, "invalid join token: it is for another cluster (its CA digest does not match this cluster's CA)"
    role = token_roles(cluster).get(token)
    if role is None:
        return None, "invalid join token (wrong, or rotated out: get the current one with `shoal join-token`)"
    return role, ""


class Registrar:
    def __init__(
        self,
        store: Store,
        authority: Authority,
        ca: Callable[[], CertificateAuthority],
        cluster: Callable[[], Awaitable[pb.Cluster]],
        managers: Callable[[], list[str]],
        manager_statuses: Callable[[], list[pb.ManagerStatus]] = list,
    ) -> None:
        self.store = store
        self.authority = authority
        self.ca = ca
        self.cluster = cluster  # read from the store on each join: a rotated token is dead at once
        self.managers = managers
        self.manager_statuses = manager_statuses  # their etcd endpoints go to a (promoted) manager

    async def register(self, request: dpb.RegisterRequest, context: grpc.aio.ServicerContext) -> dpb.RegisterResponse:
        ident = self.authority.identity(context)
        c = await self.cluster()
        if ident.role == "join":
            role, why = token_check(request.token, c)
            if role is None:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, why)
            if not request.csr:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a join needs a certificate signing request")
            node_id = new_id()  # never the caller's choice: naming a known node must not take it over
        elif ident.role in ("worker", "manager"):
            node_id = ident.node_id
            if request.node_id and request.node_id != node_id:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"this certificate is for node {node_id}, not {request.node_id}")
            role = pb.NodeSpec.MANAGER if ident.role == "manager" else pb.NodeSpec.WORKER
        else:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "permission denied: no valid certificate")
        pubkey = None
        if request.csr:
            try:
                pubkey = tls.csr_public_key(request.csr)
            except ValueError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        role = await self._write_node(node_id, role, request, context, joined=ident.role == "join")  # type: ignore[arg-type]
        resp = dpb.RegisterResponse(node_id=node_id, role=role, managers=self.managers())  # type: ignore[arg-type]
        ca = self.ca()
        resp.ca_certificate = ca.cert_pem
        if pubkey is not None:
            resp.certificate = ca.issue(pubkey, node_id, ROLE_NAMES[role], c.id)
            if role == pb.NodeSpec.MANAGER:
                resp.ca_key_kek = ca.kek
                resp.etcd_endpoints.extend(usable_etcd_endpoints(self.manager_statuses(), request.description.addr or context.peer()))
        _log.info("node registered", node=node_id, role=ROLE_NAMES[role], how=ident.role, certificate=bool(pubkey))
        return resp

    async def _write_node(self, node_id: str, role: int, request: dpb.RegisterRequest, context: grpc.aio.ServicerContext, joined: bool) -> int:
        """Create (a join) or refresh the node's record; returns its role (a known node keeps the one on record)."""

        def refreshed(node: pb.Node | None) -> pb.Node:
            nonlocal role
            now = time.time_ns()
            if node is not None and joined:
                raise Conflict(f"node id {node_id} is taken")  # a fresh id: cannot happen short of a broken RNG
            if node is not None:
                role = node.spec.role  # a known node keeps its role (promote/demote change it)
            else:
                node = pb.Node(id=node_id)
                node.spec.role = role  # type: ignore[assignment]
                node.spec.availability = request.availability
                node.meta.created_at_ns = now
            node.description.CopyFrom(request.description)
            if not node.description.addr:
                node.description.addr = context.peer().removeprefix("ipv4:")
            node.meta.updated_at_ns = now
            return node

        try:
            await objects.nodes.update_retrying(Writer(self.store), node_id, refreshed, attempts=5)
        except Conflict:
            await context.abort(grpc.StatusCode.ABORTED, "node record changed concurrently; retry")
        return role
