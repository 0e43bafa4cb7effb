"""The replicated orchestrator's decision: given a service and its tasks, what to create, stop and delete.

Pure and synchronous (``now`` is passed in). One slot per replica: a slot keeps one live task; a task
that ended is replaced after the restart delay when the restart policy allows it; a task on a node that
went down is replaced at once; slots above the replica count are removed from the highest down; removed
services take their tasks with them. Old tasks are kept as history, ``history_limit`` per slot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from shoal.manager.orchestrator.types import Actions, TaskView, new_task
from shoal.proto import types_pb2 as pb

DEFAULT_HISTORY = 5


def _restart_due(service: pb.Service, slot_tasks: list[TaskView], last: TaskView, now_ns: int) -> int | None:
    """When a replacement for the ended task ``last`` may start (ns), or None if the policy says never."""
    rp = service.spec.restart_policy
    if rp.condition == pb.RestartPolicy.NONE:
        return None
    if rp.condition == pb.RestartPolicy.ON_FAILURE and last.state not in (pb.FAILED, pb.REJECTED):
        return None
    if rp.max_attempts:
        ended = [t for t in slot_tasks if t.terminal and t.state != pb.SHUTDOWN]
        if rp.window_ns:
            ended = [t for t in ended if t.status.timestamp_ns >= now_ns - rp.window_ns]
        if len(ended) > rp.max_attempts:
            return None
    return last.status.timestamp_ns + rp.delay_ns


def _reap(slot_tasks: list[TaskView], acts: Actions, history_limit: int) -> None:
    """Delete tasks that are done and beyond the history kept for their slot."""
    old = sorted((t for t in slot_tasks if t.terminal and t.task.desired_state != pb.RUNNING), key=lambda t: t.created)
    keep = max(history_limit - sum(1 for t in slot_tasks if not t.terminal), 0)
    for t in old[: max(len(old) - keep, 0)]:
        acts.delete.append(t.id)


def _remove_all(tasks: list[TaskView], node_ready: Callable[[str], bool], acts: Actions) -> None:
    """The service is gone (or the slot is): stop each task; delete those that no longer run anywhere."""
    for t in tasks:
        gone = t.terminal or t.state < pb.ASSIGNED or not node_ready(t.task.node_id)
        if t.task.desired_state == pb.REMOVE and gone:
            acts.delete.append(t.id)
        elif t.task.desired_state != pb.REMOVE:
            acts.set_desired[t.id] = pb.REMOVE


def reconcile(
    service: pb.Service | None,
    tasks: list[TaskView],
    node_ready: Callable[[str], bool],
    now_ns: int,
    history_limit: int = DEFAULT_HISTORY,
) -> Actions:
    """What to do so that ``service`` has its replicas running. ``service`` None means it was removed."""
    acts = Actions()
    if service is None:
        _remove_all(tasks, node_ready, acts)
        return acts
    replicas = service.spec.replicas
    by_slot: dict[int, list[TaskView]] = defaultdict(list)
    for t in tasks:
        by_slot[t.task.slot].append(t)
    for slot, slot_tasks in by_slot.items():
        if slot > replicas:
            _remove_all(slot_tasks, node_ready, acts)
    for slot in range(1, replicas + 1):
        slot_tasks = sorted(by_slot.get(slot, []), key=lambda t: t.created)
        live: list[TaskView] = []
        for t in slot_tasks:
            if t.task.desired_state != pb.RUNNING:
                continue
            lost = t.state >= pb.ASSIGNED and not node_ready(t.task.node_id)
            if t.terminal or lost:
                acts.set_desired[t.id] = pb.SHUTDOWN
            else:
                live.append(t)
        for extra in live[:-1]:  # never two live tasks in one slot
            acts.set_desired[extra.id] = pb.SHUTDOWN
        if not live:
            last = slot_tasks[-1] if slot_tasks else None
            if last is None or not last.terminal:
                due: int | None = now_ns  # empty slot, or its task is being shut down / was lost
            else:
                due = _restart_due(service, slot_tasks, last, now_ns)
            if due is not None and due <= now_ns:
                acts.create.append(new_task(service, slot, now_ns))
            elif due is not None:
                acts.wake(due)
        _reap(slot_tasks, acts, history_limit)
    return acts
