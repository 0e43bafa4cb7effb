"""`node update`, `node rm` and `node ps` against a fake manager: what is written, docker's output, one error line.

The fake keeps node versions as the manager does: an update must name the version it read, a stale one
is refused with "out of sequence" (the CLI then re-reads and retries a bounded number of times).
"""

from __future__ import annotations

import grpc
import pytest

from shoal.cli import node as node_cli
from shoal.proto import control_pb2, types_pb2
from tests.fixtures.cli_fakes import FakeRpcError, FakeStub, rows, run

Spec = types_pb2.NodeSpec


class NodeFake(FakeStub):
    """Nodes with versions; UpdateNode checks the version, RemoveNode refuses a ready node without force."""

    def __init__(self) -> None:
        super().__init__()
        self.interfere = 0  # this many updates are overtaken by another writer (the version moves first)
        self.removed: list[str] = []

    def _node(self, ref: str) -> types_pb2.Node:
        """The stored node itself (GetNode answers with a copy)."""
        for n in self.nodes:
            if ref in (n.id, n.description.hostname):
                return n
        raise FakeRpcError(grpc.StatusCode.NOT_FOUND, f"no such node: {ref}")

    def UpdateNode(self, req: control_pb2.UpdateNodeRequest) -> control_pb2.UpdateNodeResponse:
        self._record("UpdateNode", req)
        node = self._node(req.node_id)
        if self.interfere:
            self.interfere -= 1
            node.meta.version += 1
        if req.version != node.meta.version:
            raise FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, "update out of sequence")
        node.spec.CopyFrom(req.spec)
        node.meta.version += 1
        return control_pb2.UpdateNodeResponse(node=node)

    def RemoveNode(self, req: control_pb2.RemoveNodeRequest) -> control_pb2.RemoveNodeResponse:
        self._record("RemoveNode", req)
        node = self._node(req.node_id)
        if node.status.state == types_pb2.NodeStatus.READY and not req.force:
            raise FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"node {node.id} is not down and can't be removed (use --force)")
        self.nodes.remove(node)
        self.removed.append(node.id)
        return control_pb2.RemoveNodeResponse()

    def ListTasks(self, req: control_pb2.ListTasksRequest) -> control_pb2.ListTasksResponse:
        self._record("ListTasks", req)
        nodes = set(req.node_ids)
        return control_pb2.ListTasksResponse(tasks=[t for t in self.tasks if not nodes or t.node_id in nodes])


def _node(nid: str, host: str, role: int, state: int = types_pb2.NodeStatus.READY, leader: bool = False) -> types_pb2.Node:
    return types_pb2.Node(
        id=nid, description=types_pb2.NodeDescription(hostname=host), spec=Spec(role=role),  # type: ignore[arg-type]
        status=types_pb2.NodeStatus(state=state),  # type: ignore[arg-type]
        manager_status=types_pb2.ManagerStatus(leader=leader), meta=types_pb2.Meta(version=7),
    )  # fmt: skip


@pytest.fixture
def fake() -> NodeFake:
    f = NodeFake()
    f.nodes += [_node("node1aaaaaaaaaaaaaaaaaaaa", "m1", Spec.MANAGER, leader=True),
                _node("node2bbbbbbbbbbbbbbbbbbbb", "w1", Spec.WORKER),
                _node("node3cccccccccccccccccccc", "w2", Spec.WORKER, state=types_pb2.NodeStatus.DOWN)]
    return f


def spec_of(fake: NodeFake, host: str) -> Spec:
    return next(n.spec for n in fake.nodes if n.description.hostname == host)


# -- node update ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("word", "value"), [("drain", Spec.DRAIN), ("pause", Spec.PAUSE), ("active", Spec.ACTIVE)])
def test_availability_is_written_and_the_node_echoed(fake, word, value):
    r = run(fake, "node", "update", "--availability", word, "w1")
    assert r.exit_code == 0 and r.stdout == "w1\n"
    assert spec_of(fake, "w1").availability == value
    (req,) = fake.called("UpdateNode")
    assert req.node_id == "node2bbbbbbbbbbbbbbbbbbbb" and req.version == 7, "the version read is the one sent"


def test_labels_are_added_updated_and_removed_in_one_write(fake):
    spec_of(fake, "w1").labels.update({"zone": "east", "old": "x"})
    r = run(fake, "node", "update", "--label-add", "zone=west", "--label-add", "ssd", "--label-rm", "old", "w1")
    assert r.exit_code == 0, r.output
    assert dict(spec_of(fake, "w1").labels) == {"zone": "west", "ssd": ""}
    assert len(fake.called("UpdateNode")) == 1


def test_a_label_with_an_empty_key_is_a_usage_error_and_nothing_is_written(fake):
    r = run(fake, "node", "update", "--label-add", "=oops", "w1")
    assert r.exit_code == 2 and "invalid label '=oops': expected KEY=VALUE or KEY" in r.stderr
    assert fake.called("UpdateNode") == []


def test_removing_a_label_the_node_lacks_is_one_error(fake):
    r = run(fake, "node", "update", "--label-rm", "nope", "w1")
    assert r.exit_code == 1 and r.stderr.strip() == "Error: key nope doesn't exist in node's labels"
    assert fake.called("UpdateNode") == []


def test_role_change_through_update(fake):
    assert run(fake, "node", "update", "--role", "manager", "w1").exit_code == 0
    assert spec_of(fake, "w1").role == Spec.MANAGER


def test_a_concurrent_writer_makes_the_update_re_read_and_retry(fake):
    fake.interfere = 2
    r = run(fake, "node", "update", "--availability", "drain", "w1")
    assert r.exit_code == 0, r.output
    assert len(fake.called("UpdateNode")) == 3 and len(fake.called("GetNode")) >= 3
    assert spec_of(fake, "w1").availability == Spec.DRAIN


def test_the_retries_are_bounded_and_the_conflict_is_reported(fake):
    fake.interfere = node_cli.CONFLICT_RETRIES + 1
    r = run(fake, "node", "update", "--availability", "drain", "w1")
    assert r.exit_code == 1 and "out of sequence" in r.stderr
    assert len(fake.called("UpdateNode")) == node_cli.CONFLICT_RETRIES + 1
    assert spec_of(fake, "w1").availability == Spec.ACTIVE


def test_another_refusal_is_not_retried(fake):
    fake.fail["UpdateNode"] = [FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "permission denied: a worker certificate")]
    r = run(fake, "node", "update", "--availability", "drain", "w1")
    assert r.exit_code == 1 and "permission denied" in r.stderr
    assert len(fake.called("UpdateNode")) == 1


def test_updating_an_unknown_node_names_it(fake):
    r = run(fake, "node", "update", "--availability", "drain", "ghost")
    assert r.exit_code == 1 and "no such node: ghost" in r.stderr and r.stdout == ""


# -- node rm ----------------------------------------------------------------------------------------------


def test_a_down_node_is_removed_and_echoed(fake):
    r = run(fake, "node", "rm", "w2")
    assert r.exit_code == 0 and r.stdout == "w2\n"
    assert fake.removed == ["node3cccccccccccccccccccc"]


def test_a_ready_node_needs_force(fake):
    r = run(fake, "node", "rm", "w1")
    assert r.exit_code == 1 and "can't be removed (use --force)" in r.stderr
    assert fake.removed == []
    r = run(fake, "node", "rm", "--force", "w1")
    assert r.exit_code == 0 and fake.removed == ["node2bbbbbbbbbbbbbbbbbbbb"]
    assert fake.called("RemoveNode")[-1].force is True


def test_rm_of_several_removes_what_it_can_and_lists_each_failure(fake):
    r = run(fake, "node", "rm", "w2", "ghost", "w1")
    assert r.exit_code == 1
    assert r.stdout == "w2\n"
    assert "no such node: ghost" in r.stderr and "use --force" in r.stderr
    assert fake.removed == ["node3cccccccccccccccccccc"]


# -- node ps ----------------------------------------------------------------------------------------------


def _task(tid: str, node: str, slot: int, desired: int = types_pb2.RUNNING, state: int = types_pb2.RUNNING) -> types_pb2.Task:
    t = types_pb2.Task(id=tid, service_id="svc1", service_name="web", slot=slot, node_id=node, desired_state=desired)  # type: ignore[arg-type]
    t.spec.container.image = "nginx"
    t.status.state = state  # type: ignore[assignment]
    return t


@pytest.fixture
def with_tasks(fake: NodeFake) -> NodeFake:
    fake.tasks += [_task("t1" + "a" * 23, "node1aaaaaaaaaaaaaaaaaaaa", 1),
                   _task("t2" + "b" * 23, "node2bbbbbbbbbbbbbbbbbbbb", 2),
                   _task("t3" + "c" * 23, "node2bbbbbbbbbbbbbbbbbbbb", 3, types_pb2.SHUTDOWN, types_pb2.COMPLETE)]
    return fake


def test_node_ps_defaults_to_the_leaders_node(with_tasks):
    r = run(with_tasks, "node", "ps", "--format", "json")
    assert r.exit_code == 0, r.output
    assert [(row["Name"], row["Node"]) for row in rows(r.stdout)] == [("web.1", "m1")]


def test_node_ps_of_named_nodes_with_filters(with_tasks):
    found = rows(run(with_tasks, "node", "ps", "w1", "--format", "json").stdout)
    assert sorted(row["Name"] for row in found) == ["web.2", "web.3"]
    running = rows(run(with_tasks, "node", "ps", "w1", "-f", "desired-state=running", "--format", "json").stdout)
    assert [row["Name"] for row in running] == ["web.2"]
    ids = run(with_tasks, "node", "ps", "w1", "m1", "-q", "-f", "name=web.1").stdout.split()
    assert len(ids) == 1 and ids[0].startswith("t1")


def test_node_ps_reports_an_unknown_node_after_listing_the_others(with_tasks):
    r = run(with_tasks, "node", "ps", "w1", "ghost", "--format", "json")
    assert r.exit_code == 1 and "no such node: ghost" in r.stderr
    assert sorted(row["Name"] for row in rows(r.stdout)) == ["web.2", "web.3"]


def test_node_ps_without_a_leader_asks_for_a_node(fake):
    for n in fake.nodes:
        n.manager_status.leader = False
    r = run(fake, "node", "ps")
    assert r.exit_code == 1 and "no leader known; name a NODE" in r.stderr


def test_node_ps_refuses_an_unknown_filter(with_tasks):
    r = run(with_tasks, "node", "ps", "-f", "colour=red")
    assert r.exit_code != 0 and "colour" in r.stderr
