"""Exploit (issue 11, High 2): a worker token must never yield a manager certificate or the CA key's KEK.

Before the fix, ``Register`` with a join certificate took the node id from the request; naming an
existing manager's id (it is in the manager's server certificate, which every TLS handshake shows)
made the stored role win, so the caller got a manager certificate and the KEK. Here the attacker
does exactly that against a real manager (real etcd, real gRPC with mutual TLS).
"""

from __future__ import annotations

import grpc
import pytest

from shoal import tls
from shoal.manager.store import objects
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import dispatcher_pb2_grpc as dgrpc
from shoal.proto import types_pb2 as pb
from shoal.worker.join import CLIENT_OPTIONS, fetch_ca
from tests.fixtures.cluster import Cluster

pytestmark = pytest.mark.etcd


async def _join_as(c: Cluster, token: str, node_id: str) -> dpb.RegisterResponse:
    """What an attacker holding ``token`` sends: a join certificate, a CSR, and a node id of its choice."""
    digest, _ = tls.parse_token(token)
    ca = await fetch_ca(c.addr, digest)
    jcert, jkey = tls.join_cert(digest)
    req = dpb.RegisterRequest(token=token, node_id=node_id, csr=tls.make_csr(tls.new_key()))
    async with grpc.aio.secure_channel(c.addr, grpc.ssl_channel_credentials(ca, jkey, jcert), options=CLIENT_OPTIONS) as ch:
        return await dgrpc.DispatcherStub(ch).Register(req, timeout=5)


async def test_a_worker_token_naming_the_managers_id_gets_a_new_worker_identity(cluster):
    manager_id = cluster.manager.cfg.node_id
    await cluster.add_agent("m-agent", token=cluster.manager.cluster_obj.manager_token)  # the manager's record exists
    resp = await _join_as(cluster, cluster.manager.cluster_obj.worker_token, manager_id)
    assert not resp.ca_key_kek, "a worker token must never receive the key that unseals the CA key"
    assert resp.role == pb.NodeSpec.WORKER
    assert tls.cert_info(resp.certificate).role == "worker"
    assert resp.node_id != manager_id, "a join always gets a fresh node id"


async def test_a_join_naming_an_existing_worker_does_not_take_it_over(cluster):
    victim = await cluster.add_agent("victim")
    resp = await _join_as(cluster, cluster.manager.cluster_obj.worker_token, victim.node_id)
    assert resp.node_id != victim.node_id
    got = await objects.nodes.get(cluster.manager.store, victim.node_id)
    assert got is not None and got.obj.description.hostname == "victim", "the victim's record is untouched"


async def test_a_manager_token_join_also_gets_a_fresh_id(cluster):
    resp = await _join_as(cluster, cluster.manager.cluster_obj.manager_token, "chosen-by-caller")
    assert resp.node_id != "chosen-by-caller" and resp.role == pb.NodeSpec.MANAGER
    assert tls.cert_info(resp.certificate).node_id == resp.node_id


async def test_a_restarted_agent_keeps_its_node_id_with_its_own_certificate(cluster):
    a = await cluster.add_agent("w1")
    first = a.node_id
    await cluster.kill_agent("w1")
    again = await cluster.add_agent("w1")  # same data dir: it presents the certificate it holds
    assert again.node_id == first
