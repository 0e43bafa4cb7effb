"""A node's manager follows its role, and a manager joins an existing cluster (shoal.node.join / role).

Real etcd, a real first manager with gRPC over mutual TLS (the ``cluster`` fixture): a second node
joins with the manager token and gets the KEK, a worker token is refused with the command to use,
and ``ManagerRole`` starts a Manager in the process on a promote and stops it (forgetting the KEK)
on a demote.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from shoal.manager import ca as cluster_ca
from shoal.manager.server import ManagerConfig
from shoal.node.join import join_as_manager
from shoal.node.role import ManagerRole
from shoal.proto import control_pb2 as cpb
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.worker.join import JoinError
from tests.fixtures.cluster import Cluster, free_port
from tests.timing import eventually

pytestmark = pytest.mark.etcd


async def test_a_manager_token_joins_once_and_brings_the_kek(cluster: Cluster, tmp_path: Path):
    token = cluster.manager.cluster_obj.manager_token
    got = await join_as_manager([cluster.addr], token, tmp_path / "m2", "hint-ignored", "m2-host")
    assert got is not None
    kek, node_id = got
    assert kek and len(node_id) == 25 and node_id != "hint-ignored", "the cluster gives a fresh id"
    certs = tmp_path / "m2" / "certificates"
    assert {"node.crt", "node.key", "ca.crt"} <= {p.name for p in certs.iterdir()}
    # the control API answers from the manager's watch-fed cache, a few ms behind the join's write
    got_node = await eventually(lambda: cluster.control.GetNode(cpb.GetNodeRequest(node_id=node_id)), 10,
                                "the joined node in the control API", ignore=(grpc.aio.AioRpcError,))
    node = got_node.node
    assert node.spec.role == pb.NodeSpec.MANAGER and node.description.hostname == "m2-host"
    (certs / "ca.kek").write_bytes(kek)  # what `shoal manager --join` keeps
    assert await join_as_manager([cluster.addr], token, tmp_path / "m2", "", "m2-host") is None, "joined before"


async def test_a_worker_token_is_refused_naming_the_command_to_use(cluster: Cluster, tmp_path: Path):
    with pytest.raises(JoinError, match=r"this is a worker token .*use `shoal worker`, or the manager token"):
        await join_as_manager([cluster.addr], cluster.manager.cluster_obj.worker_token, tmp_path / "w", "", "w")
    assert not (tmp_path / "w" / "certificates" / "ca.kek").exists()


async def test_a_wrong_secret_is_refused_by_the_manager(cluster: Cluster, tmp_path: Path):
    token = cluster.manager.cluster_obj.manager_token
    forged = token[: token.rindex("-") + 1] + "x" * 25
    with pytest.raises(JoinError, match=f"join refused by {cluster.addr}"):
        await join_as_manager([cluster.addr], forged, tmp_path / "f", "", "f")


async def test_unreachable_managers_are_tried_in_turn_and_all_named(cluster: Cluster, tmp_path: Path):
    dead = f"127.0.0.1:{free_port()}"
    token = cluster.manager.cluster_obj.manager_token
    got = await join_as_manager([dead, cluster.addr], token, tmp_path / "m3", "", "m3")
    assert got is not None, "the second address answered"
    dead2 = f"127.0.0.1:{free_port()}"
    with pytest.raises(JoinError, match=f"cannot reach any manager to join: {dead2}: .*; {dead}: "):
        await join_as_manager([dead2, dead], token, tmp_path / "m4", "", "m4")


def _base(tmp_path: Path, cluster: Cluster, etcd_server) -> ManagerConfig:  # type: ignore[no-untyped-def]
    port = free_port()
    return ManagerConfig(data_dir=tmp_path / "promoted", node_id="", listen_addr=f"127.0.0.1:{port}",
                         socket_path=str(tmp_path / "promoted.sock"), etcd_endpoints=[etcd_server.endpoint],
                         etcd_tls=etcd_server.tls, heartbeat_period=0.2)


async def test_promote_starts_a_manager_in_the_process_and_demote_stops_it(cluster: Cluster, tmp_path: Path, etcd_server):
    token = cluster.manager.cluster_obj.manager_token
    joined = await join_as_manager([cluster.addr], token, tmp_path / "promoted", "", "p")
    assert joined is not None
    kek, node_id = joined
    certs = tmp_path / "promoted" / "certificates"
    cluster_ca.kek_path(certs).write_bytes(kek)
    role = ManagerRole(_base(tmp_path, cluster, etcd_server))
    try:
        role.on_role(pb.NodeSpec.MANAGER, dpb.RegisterResponse(node_id=node_id, ca_key_kek=kek))
        await eventually(lambda: _started(role), 20, "the promoted node's manager")
        assert role.manager is not None and role.manager.cfg.node_id == node_id, "the id the cluster gave"
        task = role.task
        role.on_role(pb.NodeSpec.MANAGER, dpb.RegisterResponse(node_id=node_id, ca_key_kek=kek))  # a repeated notice
        await asyncio.sleep(0)
        assert role.task is task, "no second manager"

        role.on_role(pb.NodeSpec.WORKER, dpb.RegisterResponse(node_id=node_id))
        await eventually(lambda: _stopped(role, task), 20, "the manager stopped")
        assert not cluster_ca.kek_path(certs).exists(), "a worker keeps no key to the CA"
        assert not role.failed.done(), "a demote is not a failure"
    finally:
        await role.stop()


async def test_a_promote_without_any_etcd_endpoint_starts_nothing(tmp_path: Path):
    base = ManagerConfig(data_dir=tmp_path / "d", node_id="n" * 25, listen_addr=f"127.0.0.1:{free_port()}", socket_path="")
    role = ManagerRole(base)
    role.on_role(pb.NodeSpec.MANAGER, dpb.RegisterResponse(node_id="n" * 25, ca_key_kek=b"k"))
    await asyncio.sleep(0.05)
    assert role.manager is None and role.task is None and not role.failed.done()
    await role.stop()


async def test_a_manager_that_cannot_start_fails_the_node_with_its_error(tmp_path: Path):
    base = ManagerConfig(data_dir=tmp_path / "d", node_id="n" * 25, listen_addr=f"127.0.0.1:{free_port()}",
                         socket_path="", etcd_endpoints=[f"http://127.0.0.1:{free_port()}"])
    role = ManagerRole(base)
    role.on_role(pb.NodeSpec.MANAGER, dpb.RegisterResponse(node_id="n" * 25, ca_key_kek=b"k"))
    with pytest.raises(Exception, match="etcd"):
        await asyncio.wait_for(role.watch(), 30)
    await role.stop()


async def _started(role: ManagerRole) -> bool:
    return role.manager is not None and role.manager.started.is_set()


async def _stopped(role: ManagerRole, task: asyncio.Task | None) -> bool:
    return role.task is None and role.manager is None and task is not None and task.done()
