"""What every orchestrator shares: the restart supervisor's rule, the task reaper, and removal.

Pure functions on TaskViews. The restart rule (``shoal.restartpolicy``, shared with the update supervisor)
decides when an ended task may be replaced (condition none / on-failure / any, delay, max attempts within
a window); the reaper keeps ``history_limit`` old
tasks per slot (per node for global services); removal stops tasks and deletes them once they stopped;
``handover`` keeps a start-first replacement beside the task it replaces until it is ready.
"""

from __future__ import annotations

from collections.abc import Callable

from shoal.manager.orchestrator.types import Actions
from shoal.proto import types_pb2 as pb
from shoal.restartpolicy import restart_due
from shoal.views import TaskView

__all__ = ["DEFAULT_HISTORY", "end_finished", "handover", "reap", "remove_all", "restart_due"]

DEFAULT_HISTORY = 5


def reap(slot_tasks: list[TaskView], acts: Actions, history_limit: int, max_attempts: int = 0) -> None:
    """Delete tasks that are done and beyond the history kept for their slot.

    With a restart policy's ``max_attempts``, the newest ``max_attempts + 1`` tasks that ended on their own
    stay as well, history or not: the restart rule counts them, and a slot that used its attempts up
    would start again once the reaper had thinned them below the count (it did, forever, whenever
    max_attempts reached the history limit). Docker counts restarts apart from the history, in memory;
    in the store the count also survives a leader change.
    """
    if len(slot_tasks) <= history_limit:  # the usual slot (one task): nothing beyond the history, no sort
        return
    old = sorted((t for t in slot_tasks if t.terminal and t.task.desired_state != pb.RUNNING), key=lambda t: t.created)
    keep = max(history_limit - sum(1 for t in slot_tasks if not t.terminal), 0)
    counted = {t.id for t in [t for t in old if t.state != pb.SHUTDOWN][-(max_attempts + 1) :]} if max_attempts else set()
    for t in old[: max(len(old) - keep, 0)]:
        if t.id not in counted:
            acts.delete.append(t.id)


def remove_all(tasks: list[TaskView], node_ok: Callable[[str], bool], acts: Actions) -> None:
    """The service is gone (or the slot is): stop each task; delete those that no longer run anywhere."""
    for t in tasks:
        gone = t.terminal or t.state < pb.ASSIGNED or not node_ok(t.task.node_id)
        if t.task.desired_state == pb.REMOVE and gone:
            acts.delete.append(t.id)
        elif t.task.desired_state != pb.REMOVE:
            acts.set_desired[t.id] = pb.REMOVE


def handover(live: list[TaskView], version: int) -> list[TaskView]:
    """The live tasks a slot (or a global service's node) keeps while a start-first update replaces one.

    A replacement of the current spec ``version`` that is not ready yet stays beside the newest older
    task (which keeps serving); once a replacement is RUNNING (healthy, where there is a check: the agent
    keeps it STARTING until then) it alone is kept. Empty: no update is handing over here.
    """
    current = [t for t in live if t.task.spec_version == version]
    older = [t for t in live if t.task.spec_version != version]
    if not current or not older:
        return []
    running = [t for t in current if t.state == pb.RUNNING]
    if running:
        return [max(running, key=lambda t: t.created)]
    serving = max(older, key=lambda t: (t.state == pb.RUNNING, t.created))
    return [max(current, key=lambda t: t.created), serving]


def end_finished(t: TaskView, acts: Actions, job: bool) -> None:
    """A task that ended while still desired RUNNING: a job's success is final (desired COMPLETE)."""
    acts.set_desired[t.id] = pb.COMPLETE if job and t.state == pb.COMPLETE else pb.SHUTDOWN
