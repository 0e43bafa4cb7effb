"""The global orchestrator's decision: one task per eligible node, and global jobs run once per node.

Pure and synchronous. A node is eligible when it is up, ``active`` and satisfies the service's
constraints; a task is created there with its node already set (the scheduler only checks that it
fits). Tasks leave a node that went down, was drained, removed, or stopped satisfying the
constraints; a paused node keeps what runs there but gets nothing new. Global jobs: a node whose task
completed (for the current spec version) is done.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping

from shoal.constraints import parse_constraints
from shoal.manager.orchestrator.restart import (
    DEFAULT_HISTORY,
    end_finished,
    handover,
    reap,
    remove_all,
    restart_due,
)
from shoal.manager.orchestrator.types import Actions, new_task
from shoal.manager.placement import keeps
from shoal.proto import types_pb2 as pb
from shoal.views import TaskView


def reconcile(
    service: pb.Service | None,
    tasks: list[TaskView],
    nodes: Mapping[str, pb.Node],
    node_ready: Callable[[str], bool],
    now_ns: int,
    history_limit: int = DEFAULT_HISTORY,
) -> Actions:
    """What to do so that ``service`` has one live task on each eligible node (None: it was removed)."""
    acts = Actions()
    if service is None:
        remove_all(tasks, lambda nid: node_ready(nid) and nid in nodes, acts)
        return acts
    job = service.spec.mode == pb.ServiceSpec.GLOBAL_JOB
    cons = parse_constraints(list(service.spec.placement.constraints))
    by_node: dict[str, list[TaskView]] = defaultdict(list)
    for t in tasks:
        by_node[t.task.node_id].append(t)
    for node_id in sorted(set(nodes) | set(by_node)):
        node = nodes.get(node_id)
        node_tasks = sorted(by_node.get(node_id, []), key=lambda t: t.created)
        if node is None:  # removed from the cluster (node rm): its tasks go with it
            remove_all(node_tasks, lambda _nid: False, acts)
            continue
        keep = keeps(node, node_ready(node_id), cons)
        place = keep and node.spec.availability == pb.NodeSpec.ACTIVE
        current = [t for t in node_tasks if t.task.spec_version == service.spec_version]
        if job and any(t.state == pb.COMPLETE for t in current):
            place = False  # this node's run is done
        live: list[TaskView] = []
        for t in node_tasks:
            if t.task.desired_state != pb.RUNNING:
                continue
            if t.terminal:
                end_finished(t, acts, job)
            elif not keep or (job and t.task.spec_version != service.spec_version):
                acts.set_desired[t.id] = pb.SHUTDOWN
            else:
                live.append(t)
        kept = handover(live, service.spec_version) or live[-1:]
        for extra in live:
            if all(extra is not k for k in kept):
                acts.set_desired[extra.id] = pb.SHUTDOWN
        if not live and place:
            history = current if job else node_tasks  # a job's new spec version starts a fresh run
            last = history[-1] if history else None
            due: int | None = now_ns  # nothing ran here yet, or we stopped it (drain, down): at once
            if last is not None and last.terminal and last.state != pb.SHUTDOWN:
                due = restart_due(service, history, last, now_ns)  # it ended on its own: restart policy
            if due is not None and due <= now_ns:
                acts.create.append(new_task(service, 0, now_ns, node_id=node_id))
            elif due is not None:
                acts.wake(due)
        reap(node_tasks, acts, history_limit, service.spec.restart_policy.max_attempts)
    return acts
