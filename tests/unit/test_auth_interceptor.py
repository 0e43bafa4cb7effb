"""The manager's authorization: who a peer certificate says the caller is, and the interceptor that refuses
a call before its handler runs, for every call shape gRPC has (unary and streaming, either direction).

Certificates are real (the cluster CA and the join CA of ``shoal.tls``); the gRPC context is a stand-in
that holds the peer certificate and records an abort the way grpc.aio does (it raises).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from shoal import tls
from shoal.manager.auth import CONTROL, DISPATCHER, Authority, Identity

CLUSTER = "c" * 25


class Aborted(Exception):
    pass


class Details:
    """What grpc passes an interceptor: the full method name."""

    def __init__(self, method: str) -> None:
        self.method = method


class Ctx:
    """A servicer context: a peer (TLS or the unix socket) and the abort grpc.aio raises from."""

    def __init__(self, pem: bytes | None = None, peer: str = "ipv4:10.0.0.9:4242") -> None:
        self.pem, self._peer = pem, peer
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def auth_context(self) -> dict[str, list[bytes]]:
        return {"x509_pem_cert": [self.pem]} if self.pem else {}

    def peer(self) -> str:
        return self._peer

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise Aborted(details)


@pytest.fixture(scope="module")
def pki() -> dict[str, Any]:
    ca, key = tls.new_ca()
    other_ca, other_key = tls.new_ca()
    digest = tls.ca_digest(ca)

    def cert(node: str, role: str, cluster: str = CLUSTER, signer: tuple[bytes, bytes] = (ca, key)) -> bytes:
        return tls.sign(signer[0], signer[1], tls.new_key().public_key(), node, role, cluster)

    return {
        "ca": ca, "join_ca": tls.join_ca(digest), "join": tls.join_cert(digest)[0],
        "worker": cert("w1", "worker"), "manager": cert("m1", "manager"), "admin": cert("a1", "admin"),
        "foreign_cluster": cert("w2", "worker", cluster="x" * 25),
        "foreign_ca": cert("w3", "worker", signer=(other_ca, other_key)),
    }


def authority(pki: dict[str, Any], removed: frozenset[str] = frozenset()) -> Authority:
    return Authority(pki["ca"], pki["join_ca"], CLUSTER, revoked=lambda node_id: node_id in removed)


@pytest.mark.parametrize(("cert", "role", "node"), [("worker", "worker", "w1"), ("manager", "manager", "m1"),
                                                    ("admin", "admin", "a1"), ("join", "join", "")])
def test_a_certificate_of_the_cluster_or_join_ca_names_its_role_and_node(pki, cert, role, node):
    ident = authority(pki).identity(Ctx(pki[cert]))
    assert (ident.role, ident.node_id, ident.revoked) == (role, node, False)


@pytest.mark.parametrize("cert", ["foreign_cluster", "foreign_ca"])
def test_a_certificate_of_another_cluster_or_ca_has_no_role(pki, cert):
    assert authority(pki).identity(Ctx(pki[cert])) == Identity("")


def test_no_certificate_over_tcp_has_no_role_but_the_unix_socket_is_an_admin(pki):
    a = authority(pki)
    assert a.identity(Ctx(None)).role == ""
    assert a.identity(Ctx(None, peer="unix:/run/shoal.sock")).role == "admin"


def test_a_removed_nodes_certificate_is_revoked_on_the_next_call_not_cached(pki):
    removed: set[str] = set()
    a = Authority(pki["ca"], pki["join_ca"], CLUSTER, revoked=lambda node_id: node_id in removed)
    assert a.identity(Ctx(pki["worker"])).role == "worker"
    removed.add("w1")
    ident = a.identity(Ctx(pki["worker"]))
    assert ident.revoked and ident.role == "" and ident.node_id == "w1"
    assert a.identity(Ctx(pki["manager"])).role == "manager", "only the removed node is refused"


def test_an_admin_certificate_is_never_revoked_by_a_node_tombstone(pki):
    assert authority(pki, frozenset({"a1"})).identity(Ctx(pki["admin"])).role == "admin"


# -- the interceptor, one test per call shape --------------------------------------------------------------


async def _one(request: Any, context: Any) -> str:
    return f"answer to {request}"


async def _many(request: Any, context: Any) -> AsyncIterator[str]:
    for i in range(3):
        yield f"{request}-{i}"


async def _gather(requests: Any, context: Any) -> str:
    return ",".join([r async for r in requests])


async def _echo(requests: Any, context: Any) -> AsyncIterator[str]:
    async for r in requests:
        yield r.upper()


async def _requests(*items: str) -> AsyncIterator[str]:
    for i in items:
        yield i


HANDLERS = {
    "unary_unary": grpc.unary_unary_rpc_method_handler(_one),
    "unary_stream": grpc.unary_stream_rpc_method_handler(_many),
    "stream_unary": grpc.stream_unary_rpc_method_handler(_gather),
    "stream_stream": grpc.stream_stream_rpc_method_handler(_echo),
}


async def _intercepted(pki: dict[str, Any], shape: str, method: str) -> grpc.RpcMethodHandler:
    async def continuation(details: Any) -> grpc.RpcMethodHandler:
        return HANDLERS[shape]

    return await authority(pki).interceptor().intercept_service(continuation, Details(method))


async def _call(handler: grpc.RpcMethodHandler, shape: str, ctx: Ctx) -> Any:
    fn = getattr(handler, shape)
    request: Any = _requests("a", "b") if shape.startswith("stream") else "q"
    if shape.endswith("stream"):
        return [m async for m in fn(request, ctx)]
    return await fn(request, ctx)


EXPECTED = {"unary_unary": "answer to q", "unary_stream": ["q-0", "q-1", "q-2"], "stream_unary": "a,b",
            "stream_stream": ["A", "B"]}


@pytest.mark.parametrize("shape", list(HANDLERS))
async def test_an_allowed_caller_gets_the_handlers_answer_in_every_call_shape(pki, shape):
    handler = await _intercepted(pki, shape, f"/{DISPATCHER}/Session")
    ctx = Ctx(pki["worker"])
    assert await _call(handler, shape, ctx) == EXPECTED[shape]
    assert ctx.aborted is None


@pytest.mark.parametrize("shape", list(HANDLERS))
async def test_a_refused_caller_is_stopped_before_the_handler_runs_in_every_call_shape(pki, shape):
    ran: list[str] = []

    async def spy(request: Any, context: Any) -> Any:
        ran.append("ran")
        return "never"

    real = HANDLERS[shape]
    HANDLERS[shape] = real._replace(**{shape: spy})
    try:
        handler = await _intercepted(pki, shape, f"/{CONTROL}/CreateService")
    finally:
        HANDLERS[shape] = real
    ctx = Ctx(pki["worker"])
    with pytest.raises(Aborted):
        await _call(handler, shape, ctx)
    assert ran == []
    assert ctx.aborted == (grpc.StatusCode.PERMISSION_DENIED,
                           f"permission denied: a worker certificate may not call the control API (/{CONTROL}/CreateService)")


async def test_a_join_certificate_may_register_and_nothing_else(pki):
    register = await _intercepted(pki, "unary_unary", f"/{DISPATCHER}/Register")
    assert await _call(register, "unary_unary", Ctx(pki["join"])) == "answer to q"
    session = await _intercepted(pki, "stream_stream", f"/{DISPATCHER}/Session")
    ctx = Ctx(pki["join"])
    with pytest.raises(Aborted):
        await _call(session, "stream_stream", ctx)
    assert ctx.aborted and "a join certificate may only register" in ctx.aborted[1]


async def test_a_revoked_node_is_told_it_was_removed(pki):
    async def continuation(details: Any) -> grpc.RpcMethodHandler:
        return HANDLERS["unary_unary"]

    details = Details(f"/{DISPATCHER}/UpdateTaskStatus")
    handler = await authority(pki, frozenset({"w1"})).interceptor().intercept_service(continuation, details)
    ctx = Ctx(pki["worker"])
    with pytest.raises(Aborted):
        await handler.unary_unary("q", ctx)
    assert ctx.aborted and "node w1 was removed from the cluster" in ctx.aborted[1]


async def test_an_unknown_method_passes_through_untouched(pki):
    async def continuation(details: Any) -> None:
        return None

    assert await authority(pki).interceptor().intercept_service(continuation, Details("/nobody/Nothing")) is None
