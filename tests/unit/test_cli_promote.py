"""`node promote/demote` against a fake manager: the role is written and the restart needed is spelled out."""

from __future__ import annotations

from test_cli_fakes import FakeStub, run

from shoal.proto import control_pb2, types_pb2

Role = types_pb2.NodeSpec


class NodeFake(FakeStub):
    def UpdateNode(self, req: control_pb2.UpdateNodeRequest) -> control_pb2.UpdateNodeResponse:
        self._record("UpdateNode", req)
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


def test_promote_writes_the_role_and_says_how_to_start_the_manager() -> None:
    fake = _fake()
    r = run(fake, "node", "promote", "w1")
    assert r.exit_code == 0, r.output
    (req,) = fake.called("UpdateNode")
    assert req.node_id == "node2" and req.spec.role == Role.MANAGER
    lines = r.stdout.splitlines()
    assert lines[0] == "Node w1 promoted to a manager in the cluster."
    assert "runs no manager yet" in lines[1]
    assert lines[-1].split() == [
        "shoal", "manager", "--join", "10.0.0.1:4242,10.0.0.2:4242", "--token", "SHOAL-1-ca-manager",
        "--etcd", "<the", "cluster's", "etcd", "endpoints>", "--data-dir", "<its", "data", "dir>",
    ]  # fmt: skip


def test_demote_says_how_to_restart_as_a_worker() -> None:
    fake = _fake()
    r = run(fake, "node", "demote", "m1")
    assert r.exit_code == 0, r.output
    assert fake.called("UpdateNode")[0].spec.role == Role.WORKER
    assert r.stdout.splitlines()[-1].split()[:6] == ["shoal", "worker", "--join", "10.0.0.1:4242,10.0.0.2:4242", "--token", "SHOAL-1-ca-worker"]


def test_promoting_a_manager_changes_nothing_and_needs_no_restart() -> None:
    fake = _fake()
    r = run(fake, "node", "promote", "m1")
    assert r.exit_code == 0 and r.stdout.strip() == "Node m1 is already a manager in the cluster."
    assert not fake.called("UpdateNode") and not fake.called("GetCluster")
