"""Scheduler: placement preference trees, nodes where a service failed, tasks that name their node."""

from collections import Counter

from shoal.manager.scheduler.schedule import schedule
from tests.fixtures.scheduling import node, task


def with_prefs(t, *prefs):
    for p in prefs:
        t.spec.placement.preferences.add(spread=p)
    return t


def test_spread_over_zones_not_nodes():
    nodes = [node("a1", labels={"zone": "a"}), node("a2", labels={"zone": "a"}), node("a3", labels={"zone": "a"}), node("b1", labels={"zone": "b"})]
    plan = schedule(nodes, [with_prefs(task(f"t{i}", slot=i), "node.labels.zone") for i in range(1, 5)])
    zone = {"a1": "a", "a2": "a", "a3": "a", "b1": "b"}
    assert Counter(zone[n] for n in plan.assignments.values()) == {"a": 2, "b": 2}
    assert Counter(plan.assignments.values())["b1"] == 2


def test_preferences_form_a_tree():
    labels = [("east", "r1"), ("east", "r2"), ("west", "r1"), ("west", "r1")]
    nodes = [node(f"n{i}", labels={"zone": z, "rack": r}) for i, (z, r) in enumerate(labels)]
    plan = schedule(nodes, [with_prefs(task(f"t{i}", slot=i), "node.labels.zone", "node.labels.rack") for i in range(1, 5)])
    # 2 per zone; within east one per rack; within west (one rack) spread over its two nodes
    assert Counter(plan.assignments.values()) == {"n0": 1, "n1": 1, "n2": 1, "n3": 1}


def test_nodes_without_the_label_form_their_own_branch():
    nodes = [node("a", labels={"zone": "x"}), node("b")]
    plan = schedule(nodes, [with_prefs(task(f"t{i}", slot=i), "node.labels.zone") for i in range(1, 3)])
    assert sorted(plan.assignments.values()) == ["a", "b"]


def test_preferences_still_respect_filters():
    nodes = [node("a", labels={"zone": "x"}, mem=1 << 30), node("b", labels={"zone": "y"}, mem=1 << 30)]
    plan = schedule(nodes, [with_prefs(task(f"t{i}", slot=i, mem=600 << 20), "node.labels.zone") for i in range(1, 4)])
    assert sorted(plan.assignments.values()) == ["a", "b"]
    assert plan.unassigned["t3"] == "no suitable node (2 nodes lack 600MiB memory)"


def test_node_where_the_service_failed_goes_last():
    a, b = node("a"), node("b")
    a.failures["svc"] = 1
    b.add(task("x", service="other"))
    plan = schedule([a, b], [task("t1")])
    assert plan.assignments == {"t1": "b"}
    plan = schedule([a, b], [task("t2", service="s2")])  # only this service's failures count
    assert plan.assignments == {"t2": "a"}


def test_task_naming_its_node_is_only_checked_there():
    a, b = node("a", mem=1 << 30), node("b")
    t = task("g1", mem=2 << 30)
    t.node_id = "a"
    ok = task("g2", service="s2")
    ok.node_id = "a"
    plan = schedule([a, b], [t, ok])
    assert plan.assignments == {"g2": "a"}
    assert plan.unassigned["g1"] == "no suitable node (1 node lacks 2GiB memory)"
