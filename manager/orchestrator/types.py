"""Plain data the orchestrators return: the actions of a pass, and a fresh task for a slot.

The task view they read (a task with its effective status) is ``shoal.views.TaskView``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from shoal.ids import new_id
from shoal.proto import types_pb2 as pb


@dataclass
class Actions:
    create: list[pb.Task] = field(default_factory=list)
    set_desired: dict[str, pb.TaskState] = field(default_factory=dict)  # task id -> desired state
    delete: list[str] = field(default_factory=list)
    wake_at_ns: int | None = None  # a delayed restart falls due then

    def wake(self, at_ns: int) -> None:
        self.wake_at_ns = at_ns if self.wake_at_ns is None else min(self.wake_at_ns, at_ns)

    def __bool__(self) -> bool:
        return bool(self.create or self.set_desired or self.delete)


def new_task(service: pb.Service, slot: int, now_ns: int | None = None, node_id: str = "") -> pb.Task:
    """A fresh task for ``slot`` of ``service``, PENDING until the scheduler places it."""
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
