"""Plain views of tasks and nodes that several manager components reason about.

``TaskView`` is a task with its effective status (the orchestrators' input), ``new_task`` a fresh one
for a slot (made by the orchestrators and the update supervisor); ``NodeInfo`` is a node
with what already runs on it (the scheduler's input, and what the rebalancer asks for room). They live
in the core so that components which never import each other can share them.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from shoal.ids import new_id
from shoal.proto import types_pb2 as pb
from shoal.taskstate import is_terminal


@dataclass(frozen=True)
class TaskView:
    """A task with its effective (merged) status."""

    task: pb.Task
    status: pb.TaskStatus

    @property
    def id(self) -> str:
        return self.task.id

    @property
    def state(self) -> int:
        return self.status.state

    @property
    def terminal(self) -> bool:
        return is_terminal(self.status.state)

    @property
    def created(self) -> int:
        return self.task.meta.created_at_ns


def new_task(service: pb.Service, slot: int, now_ns: int | None = None, node_id: str = "") -> pb.Task:
    """A fresh task for ``slot`` of ``service`` (or for ``node_id``, global), PENDING until the scheduler places it."""
    now_ns = now_ns if now_ns is not None else time.time_ns()
    t = pb.Task(
        id=new_id(),
        service_id=service.id,
        service_name=service.spec.name,
        slot=slot,
        node_id=node_id,
        spec_version=service.spec_version,
        desired_state=pb.RUNNING,
    )
    t.spec.CopyFrom(service.spec)
    t.meta.created_at_ns = now_ns
    t.meta.updated_at_ns = now_ns
    t.status.state = pb.PENDING
    t.status.timestamp_ns = now_ns
    t.status.message = "pending task scheduling"
    return t


def host_ports(spec: pb.ServiceSpec) -> frozenset[tuple[int, int]]:
    """The (port, protocol) pairs a task of ``spec`` binds on its node's own addresses."""
    return frozenset((p.published_port, p.protocol) for p in spec.ports if p.publish_mode == pb.PortConfig.HOST and p.published_port)


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
    failures: Counter[str] = field(default_factory=Counter)  # service id -> recent failures here

    def __post_init__(self) -> None:
        self.id: str = self.node.id
        self.cpu_cap = self.node.description.nano_cpus
        self.mem_cap = self.node.description.memory_bytes
        self.active = self.ready and self.node.spec.availability == pb.NodeSpec.ACTIVE

    def add(self, task: pb.Task) -> None:
        self.add_spec(task.service_id, task.spec)

    def add_spec(self, service_id: str, spec: pb.ServiceSpec, ports: frozenset[tuple[int, int]] | None = None) -> None:
        """Count one more task of ``service_id`` here; ``ports`` saves recomputing ``host_ports(spec)``."""
        self.tasks_total += 1
        self.tasks_by_service[service_id] += 1
        res = spec.resources.reservations
        self.reserved_cpus += res.nano_cpus
        self.reserved_memory += res.memory_bytes
        self.host_ports |= host_ports(spec) if ports is None else ports
