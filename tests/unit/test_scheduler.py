"""Scheduler decisions on plain snapshots: filters, spread, batches and explanations."""

from collections import Counter

from shoal.manager.scheduler.schedule import schedule
from shoal.proto import types_pb2 as pb
from tests.fixtures.scheduling import node, task


def test_spreads_replicas_evenly():
    nodes = [node("a"), node("b"), node("c")]
    plan = schedule(nodes, [task(f"t{i}", slot=i) for i in range(1, 7)])
    assert Counter(plan.assignments.values()) == {"a": 2, "b": 2, "c": 2}
    assert not plan.unassigned


def test_prefers_nodes_with_fewer_tasks_of_the_service_then_fewer_in_total():
    a, b = node("a"), node("b")
    a.add(task("other", service="x"))
    a.add(task("other2", service="x"))
    plan = schedule([a, b], [task("t1")])
    assert plan.assignments == {"t1": "b"}


def test_skips_down_drained_and_paused_nodes():
    nodes = [node("a", ready=False), node("b", availability=pb.NodeSpec.DRAIN), node("c", availability=pb.NodeSpec.PAUSE), node("d")]
    plan = schedule(nodes, [task("t1"), task("t2", slot=2)])
    assert set(plan.assignments.values()) == {"d"}


def test_unplaceable_task_gets_an_explanation_with_counts():
    nodes = [node("a", mem=256 << 20), node("b", mem=256 << 20), node("c", labels={"zone": "west"})]
    plan = schedule(nodes, [task("t1", mem=512 << 20, constraints=["node.labels.zone==east"])])
    assert plan.unassigned["t1"] == "no suitable node (2 nodes lack 512MiB memory; 1 node fails node.labels.zone==east)"


def test_no_nodes_at_all():
    plan = schedule([], [task("t1")])
    assert "no suitable node" in plan.unassigned["t1"]


def test_reservations_fill_up_within_one_batch():
    nodes = [node("a", mem=1 << 30)]
    plan = schedule(nodes, [task(f"t{i}", slot=i, mem=400 << 20) for i in range(1, 4)])
    assert len(plan.assignments) == 2
    assert plan.unassigned["t3"] == "no suitable node (1 node lacks 400MiB memory)"


def test_max_replicas_per_node():
    nodes = [node("a"), node("b")]
    plan = schedule(nodes, [task(f"t{i}", slot=i, max_per_node=1) for i in range(1, 4)])
    assert sorted(plan.assignments.values()) == ["a", "b"]
    assert "max replicas per node" in plan.unassigned["t3"]


def test_constraints_on_role_and_hostname():
    nodes = [node("m", role=pb.NodeSpec.MANAGER), node("w")]
    plan = schedule(nodes, [task("t1", constraints=["node.role==manager"]), task("t2", service="s2", constraints=["node.hostname!=host-m"])])
    assert plan.assignments == {"t1": "m", "t2": "w"}


def test_explanations_read_well_in_singular_and_plural():
    from shoal.manager.scheduler.schedule import explain

    assert explain(Counter({"are not ready": 1, "have the host-mode port in use": 2})) == (
        "no suitable node (2 nodes have the host-mode port in use; 1 node is not ready)"
    )
    assert explain(Counter({"already run max replicas per node (1)": 1})) == "no suitable node (1 node already runs max replicas per node (1))"
