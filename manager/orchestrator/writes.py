"""Turning the orchestrators' actions into store writes, each compared on the task as it was read.

A new task is created only if its id is free; a desired-state change or a delete applies only to the
task revision the decision was made on (a lost race fails its batch, and the next pass decides again
on what the cache has caught up with). A task shut down before it ever reached a node is ended here:
no agent will ever report on it.
"""

from __future__ import annotations

import time

from shoal.manager.cache import ClusterCache
from shoal.manager.orchestrator.types import Actions
from shoal.manager.store import objects
from shoal.manager.store.writes import Write
from shoal.proto import types_pb2 as pb


def task_update(cache: ClusterCache, task: pb.Task) -> Write:
    """Replace ``task`` as the cache last saw it, stamping its update time."""
    task.meta.updated_at_ns = time.time_ns()
    return objects.tasks.update(task, cache.rev("task", task.id))


def actions_to_writes(cache: ClusterCache, acts: Actions) -> list[Write]:
    """The writes that carry out ``acts`` (decided on what ``cache`` holds now)."""
    out: list[Write] = [objects.tasks.create(t) for t in acts.create]
    for task_id, desired in acts.set_desired.items():
        cur = cache.get("task", task_id)
        if cur is None or cur.desired_state == desired:
            continue
        t = pb.Task()
        t.CopyFrom(cur)
        t.desired_state = desired
        if desired == pb.SHUTDOWN and t.status.state < pb.ASSIGNED and cache.status(t).state < pb.ASSIGNED:
            # never sent to a node: nobody else will ever end it, so the manager does
            t.status.state = pb.SHUTDOWN
            t.status.timestamp_ns = time.time_ns()
            t.status.message = "shut down before it was scheduled"
        out.append(task_update(cache, t))
    out += [objects.tasks.delete(task_id, cache.rev("task", task_id)) for task_id in acts.delete]
    return out
