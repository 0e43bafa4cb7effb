"""Where a task of a service may run: the node checks the scheduler and the orchestrators share.

The scheduler places tasks, the global orchestrator decides which nodes should have one, the
rebalancer asks how many more a node could take and the control API counts a global service's
desired tasks; they must agree on what "eligible" means, and they never import each other (they meet
in the store). So the checks live here: ``Filter`` (one spec against one node, with the reason a
person reads), ``room`` (how many more tasks fit), ``keeps``/``eligible_nodes`` (a global service's
nodes), and ``snapshot``, the nodes-with-their-load view built from the cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from shoal.constraints import Constraint, parse_constraints
from shoal.manager.cache import ClusterCache
from shoal.proto import types_pb2 as pb
from shoal.taskstate import FAILED_STATES, TERMINAL, effective_status
from shoal.units import format_bytes
from shoal.views import NodeInfo, host_ports


class Filter:
    """Checks one node for one service spec; ``reason`` is the text used in explanations."""

    def __init__(self, spec: pb.ServiceSpec, service_id: str) -> None:
        self.spec = spec
        self.service_id = service_id
        res = spec.resources.reservations
        self.mem = res.memory_bytes
        self.cpus = res.nano_cpus
        self.constraints: list[Constraint] = parse_constraints(list(spec.placement.constraints))
        self.host_ports = host_ports(spec)
        self.max_per_node = spec.placement.max_replicas_per_node

    def fits(self, n: NodeInfo) -> bool:
        """The checks that change as tasks are placed (resources, ports, per-node limit)."""
        if self.mem and n.mem_cap and n.reserved_memory + self.mem > n.mem_cap:
            return False
        if self.cpus and n.cpu_cap and n.reserved_cpus + self.cpus > n.cpu_cap:
            return False
        if self.host_ports and self.host_ports & n.host_ports:
            return False
        return not (self.max_per_node and n.tasks_by_service[self.service_id] >= self.max_per_node)

    def check(self, n: NodeInfo) -> str | None:
        """None when the node fits, else the reason it does not (one per kind of failure)."""
        if not n.ready:
            return "are not ready"
        if n.node.spec.availability != pb.NodeSpec.ACTIVE:
            return "are not available for new tasks (drain or pause)"
        if self.mem and n.mem_cap and n.reserved_memory + self.mem > n.mem_cap:
            return f"lack {format_bytes(self.mem)} memory"
        if self.cpus and n.cpu_cap and n.reserved_cpus + self.cpus > n.cpu_cap:
            return f"lack {self.cpus / 1e9:g} CPUs"
        for c in self.constraints:
            if not c.matches(n.node):
                return f"fail {c}"
        if self.host_ports & n.host_ports:
            return "have the host-mode port in use"
        if self.max_per_node and n.tasks_by_service[self.service_id] >= self.max_per_node:
            return f"already run max replicas per node ({self.max_per_node})"
        return None


def room(spec: pb.ServiceSpec, service_id: str, nodes: list[NodeInfo], limit: int) -> dict[str, int]:
    """How many more tasks of the service each eligible node could take, at most ``limit``.

    Eligible is what ``schedule`` asks before spreading: ready, active and every constraint met; a
    node that is not eligible is absent. Room counts reservations, host-mode ports and the per-node
    limit, so a caller (the rebalancer) can tell where the scheduler would put a replacement.
    """
    filt = Filter(spec, service_id)
    out: dict[str, int] = {}
    for n in nodes:
        if not n.active or not all(c.matches(n.node) for c in filt.constraints):
            continue
        free = limit
        if filt.mem and n.mem_cap:
            free = min(free, max(n.mem_cap - n.reserved_memory, 0) // filt.mem)
        if filt.cpus and n.cpu_cap:
            free = min(free, max(n.cpu_cap - n.reserved_cpus, 0) // filt.cpus)
        if filt.host_ports:
            free = min(free, 0 if filt.host_ports & n.host_ports else 1)
        if filt.max_per_node:
            free = min(free, max(filt.max_per_node - n.tasks_by_service[service_id], 0))
        out[n.id] = free
    return out


def eligible_nodes(service: pb.Service, nodes: Mapping[str, pb.Node], node_ready: Callable[[str], bool]) -> list[str]:
    """The nodes a global service should have a task on (what ``svc ls`` shows as desired)."""
    cons = parse_constraints(list(service.spec.placement.constraints))
    return [nid for nid, n in nodes.items() if keeps(n, node_ready(nid), cons) and n.spec.availability == pb.NodeSpec.ACTIVE]


def keeps(node: pb.Node | None, ready: bool, cons: list[Constraint]) -> bool:
    """Tasks of the service may stay on ``node``: it is up, not drained, and matches the constraints."""
    if node is None or not ready or node.spec.availability == pb.NodeSpec.DRAIN:
        return False
    return all(c.matches(node) for c in cons)


FAILURE_WINDOW_NS = 5 * 60 * 10**9  # a service that failed on a node within this goes there last
_NO_PORTS: frozenset[tuple[int, int]] = frozenset()


def snapshot(cache: ClusterCache, now_ns: int | None = None) -> tuple[list[NodeInfo], list[pb.Task]]:
    """Nodes with what runs on them (and recent failures), and the tasks waiting for a node."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    nodes = {nid: NodeInfo(n, ready=cache.node_ready(nid)) for nid, n in cache.nodes().items()}
    pending: list[pb.Task] = []
    reports = cache.objects["status"]
    for v in cache.objects["task"].values():
        t: pb.Task = v.obj
        r = reports.get(t.id)
        st = effective_status(t, r.obj if r is not None else None)
        state = st.state
        if state == pb.PENDING:
            if t.desired_state == pb.RUNNING:
                pending.append(t)
            continue
        info = nodes.get(t.node_id)
        if info is None:
            continue
        if state < TERMINAL and t.desired_state == pb.RUNNING:
            info.add_spec(t.service_id, t.spec, None if t.spec.ports else _NO_PORTS)
        elif state in FAILED_STATES and st.timestamp_ns >= now_ns - FAILURE_WINDOW_NS:
            info.failures[t.service_id] += 1
    return sorted(nodes.values(), key=lambda n: n.id), pending
