"""Exploit (issue 11, High 3, last part): writing a node's role into etcd made its next renewal a manager.

Register took the role from the node's record, so anyone who could write etcd set ``role: MANAGER``
on a worker they controlled and got a manager certificate and the CA key's KEK at the next renewal.
Now a certificate of a higher role needs the role grant the control API writes for an admin (who,
when, and a MAC keyed from the KEK that etcd never holds); a bare write is undone at the renewal.
"""

from __future__ import annotations

import os

import pytest

from shoal.manager import sealing
from shoal.manager.store import objects
from shoal.manager.store.writes import Writer
from shoal.proto import control_pb2 as cpb
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.worker.join import register
from tests.fixtures.cluster import Cluster

pytestmark = pytest.mark.etcd


async def _write_role(c: Cluster, node_id: str, role: int, grant: pb.RoleGrant | None = None) -> None:
    """What an attacker with write access to etcd does: no control API, no admin."""

    def change(n: pb.Node | None) -> pb.Node:
        assert n is not None
        n.spec.role = role  # type: ignore[assignment]
        if grant is not None:
            n.role_grant.CopyFrom(grant)
        return n

    await objects.nodes.update_retrying(Writer(c.manager.store), node_id, change)


async def _renew(c: Cluster, agent) -> dpb.RegisterResponse:
    return await register(agent.creds, c.addr, dpb.RegisterRequest(node_id=agent.node_id), renew=True)


async def test_a_bare_etcd_write_of_the_role_yields_no_manager_certificate(cluster):
    w = await cluster.add_agent("w1")
    await cluster.kill_agent("w1")
    await _write_role(cluster, w.node_id, pb.NodeSpec.MANAGER)
    resp = await _renew(cluster, w)
    assert not resp.ca_key_kek, "the KEK goes only to a node an admin promoted"
    assert resp.role == pb.NodeSpec.WORKER and w.creds.info().role == "worker"
    got = await objects.nodes.get(cluster.manager.store, w.node_id)
    assert got is not None and got.obj.spec.role == pb.NodeSpec.WORKER, "the forged role is undone"


async def test_a_grant_forged_without_the_kek_is_refused(cluster):
    w = await cluster.add_agent("w2")
    await cluster.kill_agent("w2")
    forged = sealing.grant(os.urandom(32), w.node_id, pb.NodeSpec.MANAGER, "admin-attacker")
    await _write_role(cluster, w.node_id, pb.NodeSpec.MANAGER, forged)
    resp = await _renew(cluster, w)
    assert not resp.ca_key_kek and resp.role == pb.NodeSpec.WORKER


async def test_a_grant_of_another_node_does_not_transfer(cluster):
    a = await cluster.add_agent("w3")
    b = await cluster.add_agent("w4")
    await cluster.kill_agent("w4")
    kek = cluster.manager.ca.kek
    await _write_role(
        cluster, b.node_id, pb.NodeSpec.MANAGER, sealing.grant(kek, a.node_id, pb.NodeSpec.MANAGER, "local")
    )
    assert (await _renew(cluster, b)).role == pb.NodeSpec.WORKER


async def test_a_promotion_through_the_control_api_records_who_and_when(cluster):
    w = await cluster.add_agent("w5")
    await cluster.kill_agent("w5")
    node = (await cluster.control.GetNode(cpb.GetNodeRequest(node_id=w.node_id))).node
    spec = pb.NodeSpec()
    spec.CopyFrom(node.spec)
    spec.role = pb.NodeSpec.MANAGER
    await cluster.control.UpdateNode(
        cpb.UpdateNodeRequest(node_id=w.node_id, version=node.meta.version, spec=spec)
    )
    got = await objects.nodes.get(cluster.manager.store, w.node_id)
    assert (
        got is not None and got.obj.role_grant.by == "local" and got.obj.role_grant.at_ns > 0
    )  # the unix socket's admin
    resp = await _renew(cluster, w)
    assert resp.role == pb.NodeSpec.MANAGER and resp.ca_key_kek and w.creds.info().role == "manager"


async def test_a_demotion_is_always_honoured(cluster):
    m = await cluster.add_agent("m1", token=cluster.manager.cluster_obj.manager_token)
    await cluster.kill_agent("m1")
    await _write_role(cluster, m.node_id, pb.NodeSpec.WORKER)  # lowering a role needs no grant
    resp = await _renew(cluster, m)
    assert resp.role == pb.NodeSpec.WORKER and not resp.ca_key_kek and m.creds.info().role == "worker"
