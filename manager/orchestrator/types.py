"""Plain data the orchestrators return: the actions of a pass.

The task view they read (a task with its effective status) is ``shoal.views.TaskView``; a fresh task
for a slot is ``shoal.views.new_task`` (the update supervisor creates them too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal.proto import types_pb2 as pb
from shoal.views import new_task

__all__ = ["Actions", "new_task"]


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
