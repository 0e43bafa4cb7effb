"""depends_on as a scheduling gate: a task waits (PENDING) until every service it depends on meets its condition.

Compose's ``depends_on`` orders start-up; Swarm ignores it (moby#31333), shoal honours it. The rule is
pure and reads plain data, so it is tested on its own. It gates only tasks that have not been placed
yet: once a task runs, a dependency that later fails does not stop it (as compose).

The conditions, per dependency service:

* ``service_started``: every task it should run (desired RUNNING, not ended) is RUNNING, and it has one;
* ``service_healthy``: the same, and each of them is healthy (a service without a health check never
  is: the wait names that);
* ``service_completed_successfully``: it has tasks, none is still running or due to run, the last one
  of every slot ended COMPLETE (exit 0), and a replicated job reached its count.

A dependency that does not exist (yet) is waited for too; the reason is written in the task's status
(``waiting for db: service_healthy``), which ``svc ps`` shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shoal.proto import types_pb2 as pb
from shoal.taskstate import TERMINAL

Condition = pb.ServiceDependency.Condition
NAMES = {
    pb.ServiceDependency.STARTED: "service_started",
    pb.ServiceDependency.HEALTHY: "service_healthy",
    pb.ServiceDependency.COMPLETED_SUCCESSFULLY: "service_completed_successfully",
}


@dataclass(frozen=True)
class TaskView:
    """What the rule needs of one task of a dependency."""

    slot: int
    node_id: str
    desired: int  # pb.TaskState
    state: int  # effective pb.TaskState
    health: int  # pb.Health
    exit_code: int
    created_ns: int


def _should_run(t: TaskView) -> bool:
    return t.desired == pb.RUNNING and t.state < TERMINAL


def _started(tasks: list[TaskView], healthy: bool) -> bool:
    due = [t for t in tasks if _should_run(t)]
    if not due:
        return False
    ok = all(t.state == pb.RUNNING for t in due)
    return ok and (not healthy or all(t.health == pb.HEALTH_HEALTHY for t in due))


def _completed(svc: pb.Service, tasks: list[TaskView]) -> bool:
    if not tasks or any(t.state < TERMINAL and t.desired != pb.SHUTDOWN for t in tasks):
        return False
    last: dict[tuple[int, str], TaskView] = {}
    for t in sorted(tasks, key=lambda t: t.created_ns):
        last[(t.slot, t.node_id if not t.slot else "")] = t
    if not all(t.state == pb.COMPLETE and t.exit_code == 0 for t in last.values()):
        return False
    if svc.spec.mode == pb.ServiceSpec.REPLICATED_JOB:
        done = sum(1 for t in tasks if t.state == pb.COMPLETE and t.exit_code == 0)
        return done >= (svc.spec.replicas if svc.spec.HasField("replicas") else 1)
    return True


def unmet(dep: pb.ServiceDependency, svc: pb.Service | None, tasks: list[TaskView]) -> str:
    """Why ``dep`` is not met yet (empty when it is)."""
    why = f"waiting for {dep.service}: {NAMES[dep.condition]}"
    if svc is None:
        return f"{why} (no such service yet)"
    if dep.condition == pb.ServiceDependency.COMPLETED_SUCCESSFULLY:
        return "" if _completed(svc, tasks) else why
    healthy = dep.condition == pb.ServiceDependency.HEALTHY
    if _started(tasks, healthy):
        return ""
    if healthy and _started(tasks, False) and any(t.health == pb.HEALTH_NONE for t in tasks if _should_run(t)):
        return f"{why} ({dep.service} runs without a health check)"
    return why


def waiting(
    pending: Iterable[pb.Task], services: dict[str, pb.Service], tasks_by_service: dict[str, list[TaskView]]
) -> dict[str, str]:
    """Task id -> why it waits, for the pending tasks whose service has an unmet dependency.

    ``services`` are by name; ``tasks_by_service`` by service id. Each service version is judged once.
    """
    verdict: dict[tuple[str, int], str] = {}
    out: dict[str, str] = {}
    for task in pending:
        deps = task.spec.depends_on
        if not deps:
            continue
        key = (task.service_id, task.spec_version)
        if key not in verdict:
            reasons = []
            for dep in deps:
                svc = services.get(dep.service)
                why = unmet(dep, svc, tasks_by_service.get(svc.id, []) if svc is not None else [])
                if why:
                    reasons.append(why)
            verdict[key] = "; ".join(reasons)
        if verdict[key]:
            out[task.id] = verdict[key]
    return out
