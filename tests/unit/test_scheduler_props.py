"""Property tests: the scheduler never breaks a filter, and spreads evenly when nothing constrains it."""

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.constraints import parse_constraint
from shoal.manager.scheduler.schedule import schedule
from shoal.views import NodeInfo
from tests.fixtures.scheduling import node, task

ZONES = ["a", "b", "c"]
nodes_st = st.lists(
    st.tuples(st.sampled_from(ZONES), st.integers(256, 2048), st.booleans()), min_size=0, max_size=12
)


@settings(max_examples=150, deadline=None)
@given(
    nodes=nodes_st,
    n_tasks=st.integers(1, 30),
    mem=st.sampled_from([0, 128, 300, 700]),
    constraint=st.sampled_from([None, "node.labels.zone==a", "node.labels.zone!=b"]),
    max_per_node=st.integers(0, 3),
    spread=st.booleans(),
)
def test_placements_respect_every_filter(nodes, n_tasks, mem, constraint, max_per_node, spread):
    infos = [node(f"n{i}", mem=m << 20, labels={"zone": z}, ready=ready) for i, (z, m, ready) in enumerate(nodes)]
    by_id = {n.id: n for n in infos}
    caps = {n.id: n.node.description.memory_bytes for n in infos}
    tasks = [task(f"t{i}", slot=i, mem=mem << 20, constraints=[constraint] if constraint else [], max_per_node=max_per_node) for i in range(1, n_tasks + 1)]
    if spread:
        for t in tasks:
            t.spec.placement.preferences.add(spread="node.labels.zone")
    plan = schedule(infos, tasks)
    assert set(plan.assignments) | set(plan.unassigned) == {t.id for t in tasks}
    per_node = Counter(plan.assignments.values())
    for nid, count in per_node.items():
        n = by_id[nid]
        assert n.ready
        assert count * (mem << 20) <= caps[nid]
        if constraint:
            assert parse_constraint(constraint).matches(n.node)
        if max_per_node:
            assert count <= max_per_node
    for why in plan.unassigned.values():
        assert why.startswith("no suitable node (")


@settings(max_examples=150, deadline=None)
@given(n_nodes=st.integers(1, 20), n_tasks=st.integers(0, 100))
def test_unconstrained_replicas_differ_by_at_most_one(n_nodes, n_tasks):
    infos = [node(f"n{i}") for i in range(n_nodes)]
    plan = schedule(infos, [task(f"t{i}", slot=i) for i in range(n_tasks)])
    counts = [Counter(plan.assignments.values()).get(n.id, 0) for n in infos]
    assert len(plan.assignments) == n_tasks
    assert max(counts) - min(counts) <= 1


def test_nodeinfo_counts_what_it_is_given():
    n = NodeInfo(node("x").node, ready=True)
    n.add(task("t", mem=1 << 20))
    assert (n.tasks_total, n.reserved_memory) == (1, 1 << 20)
