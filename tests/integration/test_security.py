"""The security matrix on a real manager (real etcd, real gRPC with mutual TLS): each cell refused.

One test per cell: no client certificate; a certificate from another CA; an expired certificate; a
worker certificate calling the control API; a wrong token; a rotated-out token; a worker reporting
status for another node's task; a join whose CA digest does not match the token.
"""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from shoal import tls
from shoal.proto import control_pb2 as cpb
from shoal.proto import control_pb2_grpc as cgrpc
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import dispatcher_pb2_grpc as dgrpc
from shoal.proto import types_pb2 as pb
from shoal.worker.agent import JoinError
from shoal.worker.join import CLIENT_OPTIONS
from tests.fixtures.cluster import running_n, spec


def _creds(c, cert: bytes | None = None, key: bytes | None = None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(c.manager.ca.cert_pem, key, cert)


def _signed(c, role: str, node_id: str = "someone", **kw) -> tuple[bytes, bytes]:
    k = tls.new_key()
    ca = c.manager.ca
    return tls.sign(ca.cert_pem, ca.key_pem, k.public_key(), node_id, role, c.manager.cluster_obj.id, **kw), tls.key_pem(k)


async def _control_call(c, creds: grpc.ChannelCredentials) -> grpc.aio.AioRpcError:
    async with grpc.aio.secure_channel(c.addr, creds, options=CLIENT_OPTIONS) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await cgrpc.ControlStub(ch).ListServices(cpb.ListServicesRequest(), timeout=3)
    return exc.value


async def test_admin_certificate_works(cluster):
    cert, key = _signed(cluster, "admin", "admin-test")
    async with grpc.aio.secure_channel(cluster.addr, _creds(cluster, cert, key), options=CLIENT_OPTIONS) as ch:
        await cgrpc.ControlStub(ch).ListServices(cpb.ListServicesRequest(), timeout=3)


async def test_no_client_certificate_is_refused(cluster):
    err = await _control_call(cluster, _creds(cluster))
    assert err.code() == grpc.StatusCode.UNAVAILABLE  # the TLS handshake fails: nothing reaches the API


async def test_certificate_from_another_ca_is_refused(cluster):
    other_ca, other_key = tls.new_ca()
    k = tls.new_key()
    cert = tls.sign(other_ca, other_key, k.public_key(), "intruder", "admin", cluster.manager.cluster_obj.id)
    err = await _control_call(cluster, _creds(cluster, cert, tls.key_pem(k)))
    assert err.code() == grpc.StatusCode.UNAVAILABLE


async def test_expired_certificate_is_refused(cluster):
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    cert, key = _signed(cluster, "admin", "admin-old", validity=dt.timedelta(days=1), not_before=start)
    err = await _control_call(cluster, _creds(cluster, cert, key))
    assert err.code() == grpc.StatusCode.UNAVAILABLE


async def test_worker_certificate_cannot_call_control_api(cluster):
    cert, key = _signed(cluster, "worker", "w" * 25)
    err = await _control_call(cluster, _creds(cluster, cert, key))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.details() == "permission denied: a worker certificate may not call the control API (/shoal.v1.Control/ListServices)"


async def test_join_certificate_cannot_open_a_session(cluster):
    cert, key = tls.join_cert(cluster.manager.ca.digest)
    async with grpc.aio.secure_channel(cluster.addr, _creds(cluster, cert, key), options=CLIENT_OPTIONS) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await dgrpc.DispatcherStub(ch).Heartbeat(dpb.HeartbeatRequest(node_id="x", session_id="y"), timeout=3)
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_wrong_token_is_refused(cluster):
    digest = cluster.manager.ca.digest
    with pytest.raises(JoinError, match="invalid join token .wrong, or rotated out"):
        await cluster.add_agent("bad", token=f"SHOAL-1-{digest}-{'x' * 25}")


async def test_rotated_out_token_is_refused(cluster):
    old = cluster.manager.cluster_obj.worker_token
    resp = await cluster.control.RotateJoinToken(cpb.RotateJoinTokenRequest(role="worker"))
    assert resp.cluster.worker_token != old and resp.cluster.manager_token == cluster.manager.cluster_obj.manager_token
    with pytest.raises(JoinError, match="rotated out"):
        await cluster.add_agent("late", token=old)
    await cluster.add_agent("ok", token=resp.cluster.worker_token)


async def test_join_with_mismatched_ca_digest_is_refused(cluster):
    other_ca, _ = tls.new_ca()
    token = tls.make_token(tls.ca_digest(other_ca))
    with pytest.raises(JoinError, match="does not match the join token"):
        await cluster.add_agent("mitm", token=token)


async def test_status_for_another_nodes_task_is_refused(cluster):
    a1 = await cluster.add_agent("w1")
    a2 = await cluster.add_agent("w2")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=spec(replicas=3)))
    running = await cluster.until(lambda: running_n(cluster, "web", 3))
    theirs = next(t for t in running if t.node_id == a1.node_id)
    async with a2.creds.channel(cluster.addr) as ch:
        stub = dgrpc.DispatcherStub(ch)
        call = stub.Session()
        await call.write(dpb.SessionRequest(node_id=a2.node_id))
        first = await call.read()
        req = dpb.UpdateTaskStatusRequest(node_id=a2.node_id, session_id=first.session_id)
        req.updates.add(task_id=theirs.id, status=pb.TaskStatus(state=pb.FAILED, err="forged"))
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await stub.UpdateTaskStatus(req, timeout=3)
        assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert f"task {theirs.id} is not assigned to node {a2.node_id}" in exc.value.details()
        # nor may it speak as the other node
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await stub.Heartbeat(dpb.HeartbeatRequest(node_id=a1.node_id, session_id=first.session_id), timeout=3)
        assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
        call.cancel()
    t = next(t for t in await cluster.tasks_of("web") if t.id == theirs.id)
    assert t.status.state == pb.RUNNING


async def test_node_certificate_subject_and_manager_kek(cluster):
    a = await cluster.add_agent("w1")
    info = a.creds.info()
    assert (info.node_id, info.role, info.cluster_id) == (a.node_id, "worker", cluster.manager.cluster_obj.id)
    assert 89 <= (info.not_after - info.not_before).days <= 90
    for p in (a.creds.files.key, a.creds.files.cert):
        assert p.stat().st_mode & 0o777 == 0o600
    m = await cluster.add_agent("m2", token=cluster.manager.cluster_obj.manager_token)
    assert m.creds.info().role == "manager"
