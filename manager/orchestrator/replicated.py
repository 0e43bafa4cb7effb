"""The replicated orchestrator's decision: given a service and its tasks, what to create, stop and delete.

Pure and synchronous (``now`` is passed in). One slot per replica: a slot keeps one live task; a task
that ended is replaced after the restart delay when the restart policy allows it; a task on a node that
went down, was drained or removed is replaced at once; slots above the replica count are removed from
the highest down; removed services take their tasks with them. Tasks of an older spec are replaced by
the update supervisor (``manager/updater``), not here: a start-first replacement lives beside the old
task until it is ready, then the old one is stopped here (``restart.handover``). Old tasks are kept as history,
``history_limit`` per slot.

Slots are dense (1..replicas), so scaling down always removes exactly the slots above the new count.
Swarm's "among equals, tasks on the most loaded nodes" applies where tasks compete for removal: when a
slot has several live tasks (a race, a node that came back), the one kept is a running one on the
least loaded node (``load``: live tasks per node), newest on a tie; the others, on the most loaded
nodes, are stopped. Evening out the spread after a scale-down is the rebalancer's job (``--rebalance``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from shoal.manager.orchestrator.restart import DEFAULT_HISTORY, handover, reap, remove_all, restart_due
from shoal.manager.orchestrator.types import Actions, new_task
from shoal.proto import types_pb2 as pb
from shoal.views import TaskView

__all__ = ["CREATE_BATCH", "DEFAULT_HISTORY", "reconcile"]

CREATE_BATCH = 500
"""The most tasks one pass creates for one service; the pass asks to run again at once for the rest, so
a service scaled to thousands of replicas shares the loop with the others instead of holding it."""


def reconcile(
    service: pb.Service | None,
    tasks: list[TaskView],
    node_ok: Callable[[str], bool],
    now_ns: int,
    history_limit: int = DEFAULT_HISTORY,
    load: Callable[[str], int] | None = None,
) -> Actions:
    """What to do so that ``service`` has its replicas running. ``service`` None means it was removed.

    ``node_ok(node_id)`` says whether tasks may keep running on a node (it is up and not drained);
    ``load(node_id)`` how many live tasks it runs (only asked when a slot has several live tasks).
    """
    acts = Actions()
    if service is None:
        remove_all(tasks, node_ok, acts)
        return acts
    replicas = service.spec.replicas
    by_slot: dict[int, list[TaskView]] = defaultdict(list)
    for t in tasks:
        by_slot[t.task.slot].append(t)
    for slot in sorted(by_slot, reverse=True):  # highest slots first
        if slot > replicas:
            remove_all(by_slot[slot], node_ok, acts)
    for slot in range(1, replicas + 1):
        if slot not in by_slot:  # an empty slot (a scale-up): create its task, nothing else to look at
            if len(acts.create) < CREATE_BATCH:
                acts.create.append(new_task(service, slot, now_ns))
            else:
                acts.wake(now_ns)  # the next pass goes on with the rest
            continue
        slot_tasks = sorted(by_slot[slot], key=lambda t: t.created)
        live: list[TaskView] = []
        for t in slot_tasks:
            if t.task.desired_state != pb.RUNNING:
                continue
            lost = t.state >= pb.ASSIGNED and not node_ok(t.task.node_id)
            if t.terminal or lost:
                acts.set_desired[t.id] = pb.SHUTDOWN
            else:
                live.append(t)
        if len(live) > 1:  # never two live tasks in one slot, but while a start-first replacement starts
            keep = handover(live, service.spec_version) or [_keeper(live, load)]
            for extra in live:
                if all(extra is not k for k in keep):
                    acts.set_desired[extra.id] = pb.SHUTDOWN
        if not live:
            last = slot_tasks[-1] if slot_tasks else None
            if last is None or not last.terminal:
                due: int | None = now_ns  # empty slot, or its task is being shut down / was lost
            else:
                due = restart_due(service, slot_tasks, last, now_ns)
            if due is not None and due <= now_ns and len(acts.create) >= CREATE_BATCH:
                acts.wake(now_ns)  # the next pass goes on with the rest
            elif due is not None and due <= now_ns:
                acts.create.append(new_task(service, slot, now_ns))
            elif due is not None:
                acts.wake(due)
        reap(slot_tasks, acts, history_limit, service.spec.restart_policy.max_attempts)
    return acts


def _keeper(live: list[TaskView], load: Callable[[str], int] | None) -> TaskView:
    """The live task a slot keeps: a running one, on the least loaded node, the newest on a tie."""
    loads = {t.task.node_id: load(t.task.node_id) if load and t.task.node_id else 0 for t in live}
    return min(live, key=lambda t: (t.state != pb.RUNNING, loads[t.task.node_id], -t.created))
