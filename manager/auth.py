"""Who is calling, and may they: the manager's TLS credentials and its authorization interceptor.

Every TCP connection is mutual TLS: the server trusts the cluster CA (node and admin certificates)
and the join CA (certificates good only for Register; see ``shoal.tls``). The role in the
certificate decides which API a caller may use:

- ``join``: ``Dispatcher/Register`` only (the token it carries is checked there);
- ``worker``: the Dispatcher API, image pulls, and publishing its tasks' logs (``Logs/PublishLogs``);
- ``manager``: the Dispatcher, Control, Images and Logs APIs;
- ``admin``: the Control and Images APIs, and subscribing to logs (``Logs/SubscribeLogs``).

A caller on the local unix socket is an admin: the socket's file permissions (0660) guard it.
The server certificate is re-read when its file changes, so a renewed certificate is served on new
connections without a restart (``grpc.dynamic_ssl_server_credentials``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import grpc

from shoal import tls
from shoal.certfiles import CertFiles
from shoal.proto import types_pb2 as pb

CONTROL = "shoal.v1.Control"
DISPATCHER = "shoal.v1.Dispatcher"
IMAGES = "shoal.v1.Images"
LOGS = "shoal.v1.Logs"
IMAGE_PULL = frozenset({f"/{IMAGES}/Resolve", f"/{IMAGES}/PullLayer"})
LOGS_PUBLISH = frozenset({f"/{LOGS}/PublishLogs"})  # nodes send their own tasks' lines
LOGS_SUBSCRIBE = frozenset({f"/{LOGS}/SubscribeLogs"})  # `svc logs`: what the control API's callers may ask
ALLOWED: dict[str, frozenset[str]] = {
    "join": frozenset({f"/{DISPATCHER}/Register"}),
    "worker": frozenset({DISPATCHER}) | IMAGE_PULL | LOGS_PUBLISH,
    "manager": frozenset({DISPATCHER, CONTROL, IMAGES, LOGS}),
    "admin": frozenset({CONTROL, IMAGES}) | LOGS_SUBSCRIBE,
}


@dataclass(frozen=True)
class Identity:
    role: str  # join, worker, manager, admin, or "" (no valid certificate, or a revoked one)
    node_id: str = ""
    serial: str = ""  # the certificate's serial, hex
    revoked: bool = False  # a certificate of a removed node (its role is then "")


def allowed(ident: Identity, method: str) -> bool:
    """Whether ``ident`` may call ``method`` (``/shoal.v1.Service/Method``), pure."""
    rules = ALLOWED.get(ident.role, frozenset())
    service = method.split("/")[1] if method.count("/") >= 2 else ""
    return method in rules or service in rules


def refusal(ident: Identity, method: str) -> str:
    api = "control" if CONTROL in method else "images" if IMAGES in method else "logs" if LOGS in method else "dispatcher"
    if ident.revoked:
        return f"permission denied: node {ident.node_id} was removed from the cluster; its certificate is revoked (join again with a token as a new node)"
    if not ident.role:
        return "permission denied: no valid cluster certificate"
    if ident.role == "join":
        return f"permission denied: a join certificate may only register (called {method})"
    return f"permission denied: a {ident.role} certificate may not call the {api} API ({method})"


class Authority:
    """Maps a peer certificate to an identity, checking it against the cluster and join CAs."""

    def __init__(self, ca_pem: bytes, join_ca_pem: bytes, cluster_id: str, revoked: Callable[[str], bool] | None = None) -> None:
        self.ca_pem = ca_pem
        self.join_ca_pem = join_ca_pem
        self.cluster_id = cluster_id
        self.revoked = revoked or (lambda node_id: False)
        """Whether a node id was removed (tombstoned): every certificate of it is refused, on each call."""
        self._of_pem = lru_cache(maxsize=8192)(self._parse)

    def _parse(self, pem: bytes) -> Identity:
        if tls.issued_by(pem, self.ca_pem):
            info = tls.cert_info(pem)
            if info.role in tls.ROLES and info.cluster_id == self.cluster_id:
                return Identity(info.role, info.node_id, format(info.serial, "x"))
            return Identity("")
        if tls.issued_by(pem, self.join_ca_pem):
            return Identity("join")
        return Identity("")

    def identity(self, context: grpc.aio.ServicerContext) -> Identity:
        auth = context.auth_context()
        pems = auth.get("x509_pem_cert")
        if pems:
            ident = self._of_pem(pems[0])
            if ident.role in ("worker", "manager") and self.revoked(ident.node_id):
                return Identity("", ident.node_id, ident.serial, revoked=True)
            return ident
        if context.peer().startswith("unix:"):
            return Identity("admin", "local")
        return Identity("")

    def interceptor(self) -> grpc.aio.ServerInterceptor:
        return _Interceptor(self)


class _Interceptor(grpc.aio.ServerInterceptor):
    def __init__(self, authority: Authority) -> None:
        self.authority = authority

    async def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method
        authority = self.authority

        async def check(context: grpc.aio.ServicerContext) -> None:
            ident = authority.identity(context)
            if not allowed(ident, method):
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal(ident, method))

        for shape, guard in _GUARDS:
            inner = getattr(handler, shape)
            if inner is not None:
                return handler._replace(**{shape: guard(inner, check)})
        return handler


Check = Callable[[grpc.aio.ServicerContext], Awaitable[None]]


def _guard_response(inner: Callable, check: Check) -> Callable:
    """A handler with one response (unary-unary, stream-unary): checked, then called."""

    async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await check(context)
        return await inner(request, context)

    return guarded


def _guard_stream(inner: Callable, check: Check) -> Callable:
    """A handler that streams its responses (unary-stream, stream-stream): checked, then relayed."""

    async def guarded(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await check(context)
        async for msg in inner(request, context):
            yield msg

    return guarded


# every call shape a gRPC handler can have, and how it is guarded
_GUARDS = (("unary_unary", _guard_response), ("unary_stream", _guard_stream),
           ("stream_stream", _guard_stream), ("stream_unary", _guard_response))


class ServerCredentials:
    """The manager's TLS server credentials, re-read when its certificate file changes."""

    def __init__(self, files: CertFiles, ca_pem: bytes, join_ca_pem: bytes) -> None:
        self.files = files
        self.roots = ca_pem + join_ca_pem
        self._mtime = files.mtime()

    def _config(self) -> grpc.ServerCertificateConfiguration:
        cert, key, ca = self.files.load()
        return grpc.ssl_server_certificate_configuration([(key, cert + ca)], root_certificates=self.roots)

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        m = self.files.mtime()
        if m == self._mtime:
            return None
        self._mtime = m
        return self._config()

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(self._config(), self._fetch, require_client_authentication=True)


ROLE_CHANGED = "the node's role changed (promoted or demoted): renew the node certificate, then start a new session"


def role_changed(record_role: int, cert_role: str) -> bool:
    """Whether the node's record names another role than its session's certificate. Pure."""
    return cert_role in ("worker", "manager") and (record_role == pb.NodeSpec.MANAGER) != (cert_role == "manager")


def request_id_mismatch(cert_node: str, requested: str) -> bool:
    """A request naming a node other than the certificate's (an empty name means the caller's own)."""
    return bool(requested) and requested != cert_node
