"""`node promote/demote` against a fake manager: the role is written, docker's one line, refusals are one error line."""

from __future__ import annotations

import grpc

from shoal.proto import control_pb2, types_pb2
from tests.fixtures.cli_fakes import FakeRpcError, FakeStub, run

Role = types_pb2.NodeSpec


class NodeFake(FakeStub):
    refuse = ""

    def UpdateNode(self, req: control_pb2.UpdateNodeRequest) -> control_pb2.UpdateNodeResponse:
        self._record("UpdateNode", req)
        if self.refuse:
            raise FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, self.refuse)
        node = next(n for n in self.nodes if n.id == req.node_id)
        node.spec.CopyFrom(req.spec)
        return control_pb2.UpdateNodeResponse(node=node)

    def GetCluster(self, req: control_pb2.GetClusterRequest) -> control_pb2.GetClusterResponse:
        self._record("GetCluster", req)
        c = types_pb2.Cluster(worker_token="SHOAL-1-ca-worker", manager_token="SHOAL-1-ca-manager")
        return control_pb2.GetClusterResponse(cluster=c, managers=["10.0.0.1:4242", "10.0.0.2:4242"])


def _fake() -> NodeFake:
    f = NodeFake()
    for nid, host, role in (("node1", "m1", Role.MANAGER), ("node2", "w1", Role.WORKER)):
        f.nodes.append(types_pb2.Node(id=nid, description=types_pb2.NodeDescription(hostname=host), spec=types_pb2.NodeSpec(role=role)))
    return f


def test_promote_writes_the_role_in_one_line() -> None:
    fake = _fake()
    r = run(fake, "node", "promote", "w1")
    assert r.exit_code == 0, r.output
    (req,) = fake.called("UpdateNode")
    assert req.node_id == "node2" and req.spec.role == Role.MANAGER
    assert r.stdout.splitlines() == ["Node w1 promoted to a manager in the cluster."]


def test_demote_writes_the_role_in_one_line() -> None:
    fake = _fake()
    r = run(fake, "node", "demote", "m1")
    assert r.exit_code == 0, r.output
    assert fake.called("UpdateNode")[0].spec.role == Role.WORKER
    assert r.stdout.splitlines() == ["Node m1 demoted to a worker in the cluster."]


def test_a_refused_promote_is_one_error_line() -> None:
    fake = _fake()
    fake.refuse = "cannot promote node w1: the cluster's etcd is only reachable on this host"
    r = run(fake, "node", "promote", "w1")
    assert r.exit_code != 0
    assert "cannot promote node w1" in r.output and "promoted" not in r.stdout


def test_promoting_a_manager_changes_nothing_and_needs_no_restart() -> None:
    fake = _fake()
    r = run(fake, "node", "promote", "m1")
    assert r.exit_code == 0 and r.stdout.strip() == "Node m1 is already a manager in the cluster."
    assert not fake.called("UpdateNode") and not fake.called("GetCluster")
