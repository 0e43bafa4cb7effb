"""A service's restart policy as one pure rule, shared by the orchestrators (which replace an ended task
when it says so) and the update supervisor (which must know when it gave up on a slot: that slot is a
failed one, not one still on its way). Kept in the core because those components never import each other.
"""

from __future__ import annotations

from shoal.proto import types_pb2 as pb
from shoal.taskstate import FAILED_STATES
from shoal.views import TaskView


def restart_due(service: pb.Service, slot_tasks: list[TaskView], last: TaskView, now_ns: int) -> int | None:
    """When a replacement for the ended task ``last`` may start (ns), or None if the policy says never:
    condition none, on-failure after a success, or ``max_attempts`` ended tasks (within ``window``) reached."""
    rp = service.spec.restart_policy
    if rp.condition == pb.RestartPolicy.NONE:
        return None
    if rp.condition == pb.RestartPolicy.ON_FAILURE and last.state not in FAILED_STATES:
        return None
    if rp.max_attempts:
        ended = [t for t in slot_tasks if t.terminal and t.state != pb.SHUTDOWN]
        if rp.window_ns:
            ended = [t for t in ended if t.status.timestamp_ns >= now_ns - rp.window_ns]
        if len(ended) > rp.max_attempts:
            return None
    return last.status.timestamp_ns + rp.delay_ns
