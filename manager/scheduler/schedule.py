"""The scheduler's decision: a pure function from a snapshot of nodes and pending tasks to a plan.

Filters first (ready and active, constraints, resources, host ports, max replicas per node), then
spread: placement preferences as a tree (``spread=node.labels.zone``, then the next preference inside
each zone), and at the leaves the node with the fewest tasks of the service, then fewest in total;
nodes where the service failed recently go last. Tasks of one service are placed as a batch in one
pass with heaps, not one scan per task; constraint results are computed once per constraint set.
A task that fits nowhere keeps PENDING with an explanation counting the nodes each filter turned away.
Tasks that already name their node (global services) are only checked against it.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from shoal.constraints import node_value
from shoal.manager.placement import Filter
from shoal.proto import types_pb2 as pb
from shoal.views import NodeInfo


@dataclass
class Plan:
    assignments: dict[str, str] = field(default_factory=dict)  # task id -> node id
    unassigned: dict[str, str] = field(default_factory=dict)  # task id -> why


_SINGULAR = {"are": "is", "lack": "lacks", "fail": "fails", "have": "has", "already": "already"}


def _count(n: int, reason: str) -> str:
    """``2 nodes lack 512MiB memory`` / ``1 node lacks 512MiB memory``: reasons are written in the plural."""
    if n != 1:
        return f"{n} nodes {reason}"
    verb, _, rest = reason.partition(" ")
    if verb == "already":
        rest = rest.replace("run ", "runs ", 1)
    return f"1 node {_SINGULAR.get(verb, verb)} {rest}"


def explain(failures: Counter[str]) -> str:
    """``no suitable node (3 nodes lack 512MiB memory; 2 nodes fail node.labels.zone==east)``."""
    if not failures:
        return "no suitable node (no nodes in the cluster)"
    parts = [_count(n, why) for why, n in sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))]
    return f"no suitable node ({'; '.join(parts)})"


class _Leaf:
    """Nodes of one branch of the preference tree, in a heap by (failed here, service tasks, total)."""

    def __init__(self, nodes: list[NodeInfo], service_id: str) -> None:
        self.sid = service_id
        self.count = sum(n.tasks_by_service[service_id] for n in nodes)
        self.by_id = {n.id: n for n in nodes}
        self.heap = [(n.failures[service_id] > 0, n.tasks_by_service[service_id], n.tasks_total, n.id) for n in nodes]
        heapq.heapify(self.heap)

    def place(self, filt: Filter) -> NodeInfo | None:
        heap = self.heap
        while heap:
            failed, svc, total, node_id = heap[0]
            n = self.by_id[node_id]
            if not filt.fits(n):  # only ever gets fuller within a batch: drop it
                heapq.heappop(heap)
                continue
            n.add_spec(self.sid, filt.spec, filt.host_ports)
            heapq.heapreplace(heap, (failed, svc + 1, total + 1, node_id))
            self.count += 1
            return n
        return None


class _Branch:
    """One level of placement preferences: children by label value, fewest tasks of the service first."""

    def __init__(self, nodes: list[NodeInfo], prefs: list[str], service_id: str) -> None:
        groups: dict[str, list[NodeInfo]] = defaultdict(list)
        for n in nodes:
            groups[node_value(n.node, prefs[0]) or ""].append(n)
        rest = prefs[1:]
        self.children: dict[str, _Leaf | _Branch] = {v: (_Branch(g, rest, service_id) if rest else _Leaf(g, service_id)) for v, g in groups.items()}
        self.count: int = sum(c.count for c in self.children.values())
        self.heap = [(c.count, v) for v, c in self.children.items()]
        heapq.heapify(self.heap)

    def place(self, filt: Filter) -> NodeInfo | None:
        while self.heap:
            _cnt, value = self.heap[0]
            child = self.children[value]
            n = child.place(filt)
            if n is None:  # that branch is full
                heapq.heappop(self.heap)
                continue
            heapq.heapreplace(self.heap, (child.count, value))
            self.count += 1
            return n
        return None


def _tree(nodes: list[NodeInfo], spec: pb.ServiceSpec, service_id: str) -> _Leaf | _Branch:
    prefs = [p.spread for p in spec.placement.preferences if p.spread]
    return _Branch(nodes, prefs, service_id) if prefs else _Leaf(nodes, service_id)


class _Eligible:
    """Nodes that are ready, active and match a constraint set; computed once per set and call."""

    def __init__(self, nodes: list[NodeInfo]) -> None:
        self.nodes = nodes
        self.active = [n for n in nodes if n.active]
        self.memo: dict[tuple[str, ...], list[NodeInfo]] = {}

    def get(self, filt: Filter) -> list[NodeInfo]:
        key = tuple(str(c) for c in filt.constraints)
        hit = self.memo.get(key)
        if hit is None:
            hit = self.memo[key] = [n for n in self.active if all(c.matches(n.node) for c in filt.constraints)]
        return hit


def _explain_all(filt: Filter, nodes: list[NodeInfo]) -> str:
    failures: Counter[str] = Counter()
    for n in nodes:
        why = filt.check(n)
        if why:
            failures[why] += 1
    return explain(failures)


def _place_batch(tasks: list[pb.Task], eligible: _Eligible, plan: Plan) -> None:
    spec, service_id = tasks[0].spec, tasks[0].service_id
    filt = Filter(spec, service_id)
    tree = _tree(eligible.get(filt), spec, service_id)
    why = ""
    for task in tasks:
        n = None if why else tree.place(filt)
        if n is not None:
            plan.assignments[task.id] = n.id
            continue
        why = why or _explain_all(filt, eligible.nodes)
        plan.unassigned[task.id] = why


def _place_on_node(task: pb.Task, by_id: dict[str, NodeInfo], plan: Plan) -> None:
    """A task created for one node (global mode): it goes there if it fits, else it waits."""
    n = by_id.get(task.node_id)
    why = Filter(task.spec, task.service_id).check(n) if n is not None else "are not in the cluster"
    if why is not None:
        plan.unassigned[task.id] = explain(Counter({why: 1}))
    elif n is not None:  # always, when nothing stands in the way
        plan.assignments[task.id] = task.node_id
        n.add(task)


def schedule(nodes: list[NodeInfo], pending: list[pb.Task]) -> Plan:
    """Place ``pending`` tasks on ``nodes`` (whose counts already include their running tasks).

    The NodeInfo objects are updated in place as tasks are placed, so one call sees its own placements.
    """
    plan = Plan()
    batches: dict[tuple[str, int], list[pb.Task]] = defaultdict(list)
    by_id = {n.id: n for n in nodes}
    for t in pending:
        if t.node_id:
            _place_on_node(t, by_id, plan)
        else:
            batches[(t.service_id, t.spec_version)].append(t)
    eligible = _Eligible(nodes)
    for key in sorted(batches):
        _place_batch(sorted(batches[key], key=lambda t: (t.slot, t.id)), eligible, plan)
    return plan
