"""Register: who may join with which token, what a node's record keeps, and what a node gets back."""

from __future__ import annotations

import grpc
import pytest

from shoal import tls
from shoal.manager.dispatcher.register import token_check
from shoal.manager.store import objects
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from tests.fixtures.dispatcher import Aborted, Harness


@pytest.fixture
async def h():
    async with Harness(heartbeat_period=0.5) as harness:
        yield harness


def join_request(token: str, node_id: str = "", addr: str = "", availability: int = pb.NodeSpec.ACTIVE) -> dpb.RegisterRequest:
    req = dpb.RegisterRequest(token=token, node_id=node_id, csr=tls.make_csr(tls.new_key()), availability=availability)  # type: ignore[arg-type]
    req.description.hostname = "w1"
    req.description.addr = addr
    return req


async def record(h: Harness, node_id: str) -> pb.Node | None:
    got = await objects.nodes.get(h.store, node_id)
    return got.obj if got is not None else None


# ---- tokens (pure) -------------------------------------------------------------------------------


def test_each_token_gives_its_role(h: Harness):
    c = h.ca.cluster
    assert token_check(c.worker_token, c) == (pb.NodeSpec.WORKER, "")
    assert token_check(c.manager_token, c) == (pb.NodeSpec.MANAGER, "")


def test_a_token_of_another_cluster_names_the_ca_mismatch(h: Harness):
    other = tls.make_token(tls.ca_digest(tls.new_ca()[0]))
    role, why = token_check(other, h.ca.cluster)
    assert role is None and "another cluster" in why


def test_a_rotated_token_is_refused_with_where_to_get_the_current_one(h: Harness):
    c = h.ca.cluster
    rotated = tls.make_token(c.ca_digest)  # right cluster, a secret nobody holds any more
    role, why = token_check(rotated, c)
    assert role is None and "shoal join-token" in why


def test_a_malformed_token_says_so(h: Harness):
    role, why = token_check("not-a-token", h.ca.cluster)
    assert role is None and why


# ---- joining -------------------------------------------------------------------------------------


async def test_a_worker_joins_with_the_worker_token(h: Harness):
    resp = await h.dispatcher.Register(join_request(h.ca.cluster.worker_token, availability=pb.NodeSpec.PAUSE), h.ca.joining())
    assert resp.role == pb.NodeSpec.WORKER and resp.node_id
    info = tls.cert_info(resp.certificate)
    assert (info.node_id, info.role, info.cluster_id) == (resp.node_id, "worker", h.ca.cluster.id)
    assert resp.ca_certificate == h.ca.ca.cert_pem
    assert not resp.ca_key_kek, "a worker never receives the key to the CA"
    node = await record(h, resp.node_id)
    assert node.spec.role == pb.NodeSpec.WORKER and node.spec.availability == pb.NodeSpec.PAUSE
    assert node.description.hostname == "w1"
    assert node.description.addr == "10.0.0.9:40500", "without an address of its own, the node is reached where it called from"


async def test_a_manager_joins_with_the_manager_token_and_receives_the_ca_key(h: Harness):
    await h.writer.apply(objects.managers.put(pb.ManagerStatus(addr="10.0.0.1:4242", etcd_endpoints=["http://10.0.0.1:2379"]), "m1"))
    await h.settle()
    resp = await h.dispatcher.Register(join_request(h.ca.cluster.manager_token, addr="10.0.0.9"), h.ca.joining())
    assert resp.role == pb.NodeSpec.MANAGER
    assert tls.cert_info(resp.certificate).role == "manager"
    assert resp.ca_key_kek == h.ca.ca.kek
    assert list(resp.etcd_endpoints) == ["http://10.0.0.1:2379"]
    assert list(resp.managers) == ["10.0.0.1:4242"]


async def test_a_join_gets_a_fresh_node_id_not_the_one_it_asks_for(h: Harness):
    resp = await h.dispatcher.Register(join_request(h.ca.cluster.worker_token, node_id="back-again"), h.ca.joining())
    assert resp.node_id != "back-again" and await record(h, resp.node_id) is not None
    assert await record(h, "back-again") is None


@pytest.mark.parametrize(
    ("token", "csr", "code"),
    [
        ("wrong", True, grpc.StatusCode.UNAUTHENTICATED),
        (None, False, grpc.StatusCode.INVALID_ARGUMENT),  # the right token, no CSR
    ],
)
async def test_a_join_that_is_refused_writes_nothing(h: Harness, token, csr, code):
    req = join_request(token or h.ca.cluster.worker_token)
    if not csr:
        req.ClearField("csr")
    before = h.store.snapshot()
    with pytest.raises(Aborted) as err:
        await h.dispatcher.Register(req, h.ca.joining())
    assert err.value.code == code
    assert h.store.snapshot() == before


async def test_a_bad_csr_is_refused(h: Harness):
    req = join_request(h.ca.cluster.worker_token)
    req.csr = b"-----BEGIN CERTIFICATE REQUEST-----\nnope\n-----END CERTIFICATE REQUEST-----\n"
    with pytest.raises(Aborted) as err:
        await h.dispatcher.Register(req, h.ca.joining())
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_caller_without_a_cluster_certificate_is_refused(h: Harness):
    with pytest.raises(Aborted) as err:
        await h.dispatcher.Register(join_request(h.ca.cluster.worker_token), h.ca.stranger())
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED


# ---- a known node coming back --------------------------------------------------------------------


async def test_a_known_node_refreshes_its_record_and_keeps_its_role_and_availability(h: Harness):
    node = await h.add_node("n1")
    before = await objects.nodes.get(h.store, "n1")
    req = dpb.RegisterRequest(node_id="n1", availability=pb.NodeSpec.DRAIN)
    req.description.hostname = "n1-renamed"
    req.description.addr = "10.0.0.5"
    resp = await h.dispatcher.Register(req, h.ca.node("n1"))
    assert resp.node_id == "n1" and resp.role == pb.NodeSpec.WORKER and not resp.certificate, "no CSR: no certificate"
    after = await record(h, "n1")
    assert after.description.hostname == "n1-renamed" and after.description.addr == "10.0.0.5"
    assert after.spec.availability == node.spec.availability, "availability is the operator's, not the node's"
    assert after.meta.created_at_ns == before.obj.meta.created_at_ns


async def test_a_promoted_node_renews_into_a_manager_certificate(h: Harness):
    await h.add_node("n1", pb.NodeSpec.MANAGER)  # promoted while it held a worker certificate
    req = dpb.RegisterRequest(node_id="n1", csr=tls.make_csr(tls.new_key()))
    resp = await h.dispatcher.Register(req, h.ca.node("n1", "worker"))
    assert resp.role == pb.NodeSpec.MANAGER and tls.cert_info(resp.certificate).role == "manager"
    assert resp.ca_key_kek == h.ca.ca.kek


async def test_a_join_naming_a_known_manager_becomes_a_new_worker(h: Harness):
    await h.add_node("m1", pb.NodeSpec.MANAGER)
    resp = await h.dispatcher.Register(join_request(h.ca.cluster.worker_token, node_id="m1"), h.ca.joining())
    assert resp.node_id != "m1" and resp.role == pb.NodeSpec.WORKER, "never above the token's role"
    assert not resp.ca_key_kek and tls.cert_info(resp.certificate).role == "worker"


async def test_a_node_certificate_cannot_register_another_node(h: Harness):
    await h.add_node("n1")
    await h.add_node("n2")
    with pytest.raises(Aborted) as err:
        await h.dispatcher.Register(dpb.RegisterRequest(node_id="n2"), h.ca.node("n1"))
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED and "n1" in err.value.details
