"""The replicated-job orchestrator's decision: ``replicas`` completions, ``max_concurrent`` at a time.

Pure and synchronous. Slots 1..replicas each run until one task of the current spec version
completes; a completed task is final (desired COMPLETE: never restarted, whatever the restart
condition). A failed task is retried under the restart policy. At most ``max_concurrent`` slots
(default: replicas) have a live or retrying task; new slots start lowest first. Updating the spec
starts a new run: tasks of older versions are stopped and only count as history.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from shoal.manager.orchestrator.restart import DEFAULT_HISTORY, end_finished, reap, remove_all, restart_due
from shoal.manager.orchestrator.types import Actions, new_task
from shoal.proto import types_pb2 as pb
from shoal.views import TaskView


def reconcile(
    service: pb.Service | None,
    tasks: list[TaskView],
    node_ok: Callable[[str], bool],
    now_ns: int,
    history_limit: int = DEFAULT_HISTORY,
) -> Actions:
    """What to do so that each slot of the job completes once, ``max_concurrent`` slots at a time."""
    acts = Actions()
    if service is None:
        remove_all(tasks, node_ok, acts)
        return acts
    replicas = service.spec.replicas
    max_concurrent = service.spec.max_concurrent or replicas
    by_slot: dict[int, list[TaskView]] = defaultdict(list)
    for t in tasks:
        by_slot[t.task.slot].append(t)
    for slot in sorted(by_slot, reverse=True):
        if slot > replicas:
            remove_all(by_slot[slot], node_ok, acts)
    active = 0
    waiting: list[int] = []  # slots that never ran in this version, in order
    for slot in range(1, replicas + 1):
        slot_tasks = sorted(by_slot.get(slot, []), key=lambda t: t.created)
        current = [t for t in slot_tasks if t.task.spec_version == service.spec_version]
        done = any(t.state == pb.COMPLETE for t in current)
        live = _settle_slot(service, slot_tasks, done, node_ok, acts)
        reap(slot_tasks, acts, history_limit, service.spec.restart_policy.max_attempts)
        if done:
            continue
        if live:
            active += 1
            continue
        last = current[-1] if current else None
        if last is None:
            waiting.append(slot)
            continue
        due: int | None = now_ns
        if last.terminal and last.state != pb.SHUTDOWN:
            due = restart_due(service, current, last, now_ns)
        if due is None:
            continue  # gave up on this slot (restart policy): it does not hold a concurrency place
        active += 1
        if due <= now_ns:
            acts.create.append(new_task(service, slot, now_ns))
        else:
            acts.wake(due)
    for slot in waiting[: max(max_concurrent - active, 0)]:
        acts.create.append(new_task(service, slot, now_ns))
    return acts


def _settle_slot(service: pb.Service, slot_tasks: list[TaskView], done: bool, node_ok: Callable[[str], bool], acts: Actions) -> list[TaskView]:
    """End what must end in one slot (finished, lost, outdated, or extra once done); returns the live task, if any."""
    live: list[TaskView] = []
    for t in slot_tasks:
        if t.task.desired_state != pb.RUNNING:
            continue
        lost = t.state >= pb.ASSIGNED and not node_ok(t.task.node_id)
        if t.terminal:
            end_finished(t, acts, job=True)
        elif lost or t.task.spec_version != service.spec_version or done:
            acts.set_desired[t.id] = pb.SHUTDOWN
        else:
            live.append(t)
    for extra in live[:-1]:
        acts.set_desired[extra.id] = pb.SHUTDOWN
    return live[-1:]
