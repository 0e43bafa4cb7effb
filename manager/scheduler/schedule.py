"""The scheduler's decision: a pure function from a snapshot of nodes and pending tasks to a plan.

Filters first (ready and active, resources, constraints, host ports, max replicas per node), then
spread (fewest tasks of the service, then fewest tasks overall). Tasks of one service are placed as a
batch in one pass over the nodes with a heap, not one scan per task. A task that fits nowhere keeps
PENDING with an explanation counting the nodes each filter turned away.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from shoal.manager.scheduler.constraints import Constraint, parse_constraints
from shoal.proto import types_pb2 as pb
from shoal.units import format_bytes


@dataclass
class NodeInfo:
    """A node and what already runs on it, as the scheduler sees it."""

    node: pb.Node
    ready: bool
    tasks_total: int = 0
    tasks_by_service: Counter[str] = field(default_factory=Counter)
    reserved_cpus: int = 0
    reserved_memory: int = 0
    host_ports: set[tuple[int, int]] = field(default_factory=set)

    @property
    def id(self) -> str:
        return self.node.id

    def add(self, task: pb.Task) -> None:
        self.tasks_total += 1
        self.tasks_by_service[task.service_id] += 1
        res = task.spec.resources.reservations
        self.reserved_cpus += res.nano_cpus
        self.reserved_memory += res.memory_bytes
        for p in task.spec.ports:
            if p.publish_mode == pb.PortConfig.HOST and p.published_port:
                self.host_ports.add((p.published_port, p.protocol))


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


class _Filter:
    """Checks one node for one service spec; ``reason`` is the text used in explanations."""

    def __init__(self, spec: pb.ServiceSpec, service_id: str) -> None:
        self.spec = spec
        self.service_id = service_id
        self.res = spec.resources.reservations
        self.constraints: list[Constraint] = parse_constraints(list(spec.placement.constraints))
        self.host_ports = {
            (p.published_port, p.protocol)
            for p in spec.ports
            if p.publish_mode == pb.PortConfig.HOST and p.published_port
        }
        self.max_per_node = spec.placement.max_replicas_per_node

    def check(self, n: NodeInfo) -> str | None:
        """None when the node fits, else the reason it does not (one per kind of failure)."""
        if not n.ready:
            return "are not ready"
        if n.node.spec.availability != pb.NodeSpec.ACTIVE:
            return "are not available for new tasks (drain or pause)"
        d = n.node.description
        if self.res.memory_bytes and d.memory_bytes and n.reserved_memory + self.res.memory_bytes > d.memory_bytes:
            return f"lack {format_bytes(self.res.memory_bytes)} memory"
        if self.res.nano_cpus and d.nano_cpus and n.reserved_cpus + self.res.nano_cpus > d.nano_cpus:
            return f"lack {self.res.nano_cpus / 1e9:g} CPUs"
        for c in self.constraints:
            if not c.matches(n.node):
                return f"fail {c}"
        if self.host_ports & n.host_ports:
            return "have the host-mode port in use"
        if self.max_per_node and n.tasks_by_service[self.service_id] >= self.max_per_node:
            return f"already run max replicas per node ({self.max_per_node})"
        return None


def explain(failures: Counter[str]) -> str:
    """``no suitable node (3 nodes lack 512MiB memory; 2 nodes fail node.labels.zone==east)``."""
    if not failures:
        return "no suitable node (no nodes in the cluster)"
    parts = [_count(n, why) for why, n in sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))]
    return f"no suitable node ({'; '.join(parts)})"


def _place_batch(tasks: list[pb.Task], nodes: list[NodeInfo], plan: Plan) -> None:
    spec, service_id = tasks[0].spec, tasks[0].service_id
    filt = _Filter(spec, service_id)
    failures: Counter[str] = Counter()
    heap: list[tuple[int, int, str]] = []
    by_id: dict[str, NodeInfo] = {}
    for n in nodes:
        why = filt.check(n)
        if why:
            failures[why] += 1
            continue
        by_id[n.id] = n
        heap.append((n.tasks_by_service[service_id], n.tasks_total, n.id))
    heapq.heapify(heap)
    for task in tasks:
        placed = False
        while heap:
            _svc, _total, node_id = heapq.heappop(heap)
            n = by_id[node_id]
            why = filt.check(n)  # reservations and per-node limits change as the batch fills nodes
            if why:
                failures[why] += 1
                continue
            plan.assignments[task.id] = node_id
            n.add(task)
            heapq.heappush(heap, (n.tasks_by_service[service_id], n.tasks_total, node_id))
            placed = True
            break
        if not placed:
            plan.unassigned[task.id] = explain(failures)


def schedule(nodes: list[NodeInfo], pending: list[pb.Task]) -> Plan:
    """Place ``pending`` tasks on ``nodes`` (whose counts already include their running tasks).

    The NodeInfo objects are updated in place as tasks are placed, so one call sees its own placements.
    """
    plan = Plan()
    batches: dict[tuple[str, int], list[pb.Task]] = defaultdict(list)
    for t in pending:
        batches[(t.service_id, t.spec_version)].append(t)
    for key in sorted(batches):
        _place_batch(sorted(batches[key], key=lambda t: (t.slot, t.id)), nodes, plan)
    return plan
