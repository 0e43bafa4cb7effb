"""What a rolling update means for one task: must it be replaced, and does it count as updated.

Shared by the leader's update supervisor (which replaces tasks), the orchestrators (which keep the
replacement a start-first update started) and the CLI (progress, stack re-deploys): one rule, one place.

A task runs a snapshot of its service's spec. Only the fields that shape the container and its place
in the cluster make a running task outdated -- the container, resources, placement, restart policy,
published ports, networks, endpoint mode and the ``--force`` counter (SwarmKit compares its TaskSpec
and endpoint the same way). A change of the service's name, labels, mode, replica count or update and
rollback policies leaves running tasks alone. A replacement counts as updated only when it is RUNNING
and, when the service has a health check, healthy (Swarm does not gate on health, moby#23962; shoal
does, and the agent keeps a task with a health check STARTING until its first healthy probe).
"""

from __future__ import annotations

from shoal.proto import types_pb2 as pb

TASK_FIELDS: tuple[str, ...] = (
    "container", "resources", "placement", "restart_policy", "ports", "networks", "endpoint_mode", "force_update",
)  # fmt: skip
"""The ServiceSpec fields a running task is replaced for when they change."""

UPDATE_STATES: dict[int, str] = {
    pb.UpdateStatus.UPDATING: "updating",
    pb.UpdateStatus.PAUSED: "paused",
    pb.UpdateStatus.COMPLETED: "completed",
    pb.UpdateStatus.ROLLBACK_STARTED: "rollback_started",
    pb.UpdateStatus.ROLLBACK_PAUSED: "rollback_paused",
    pb.UpdateStatus.ROLLBACK_COMPLETED: "rollback_completed",
}
"""docker's words for each update state (``UpdateStatus.State`` in ``docker service inspect``)."""

ROLLBACK_STATES = frozenset(
    {pb.UpdateStatus.ROLLBACK_STARTED, pb.UpdateStatus.ROLLBACK_PAUSED, pb.UpdateStatus.ROLLBACK_COMPLETED}
)
ACTIVE_STATES = frozenset({pb.UpdateStatus.UPDATING, pb.UpdateStatus.ROLLBACK_STARTED})
PAUSED_STATES = frozenset({pb.UpdateStatus.PAUSED, pb.UpdateStatus.ROLLBACK_PAUSED})


def task_key(spec: pb.ServiceSpec) -> bytes:
    """The part of ``spec`` a running task depends on, as comparable bytes."""
    part = pb.ServiceSpec()
    part.CopyFrom(spec)
    for f in part.DESCRIPTOR.fields:
        if f.name not in TASK_FIELDS:
            part.ClearField(f.name)
    return part.SerializeToString(deterministic=True)


def outdated(service: pb.Service, task: pb.Task, service_key: bytes | None = None,
             memo: dict[int, bool] | None = None) -> bool:
    """Whether ``task`` runs a spec its service has since changed in a way that needs a new task.

    ``service_key`` is ``task_key(service.spec)`` when the caller computed it once for many tasks;
    ``memo`` (spec version -> answer, one dict per service and pass) answers the tasks of a version
    already compared: tasks made at one version of a service carry the same spec (the update supervisor
    compares every task of a 60-replica service on each health report).
    """
    if task.spec_version == service.spec_version:
        return False
    if memo is not None and task.spec_version and task.spec_version in memo:
        return memo[task.spec_version]
    answer = task_key(task.spec) != (service_key if service_key is not None else task_key(service.spec))
    if memo is not None and task.spec_version:
        memo[task.spec_version] = answer
    return answer


def has_healthcheck(spec: pb.ServiceSpec) -> bool:
    """Whether tasks of ``spec`` run a health check (a test other than NONE)."""
    test = spec.container.healthcheck.test
    return bool(test) and test[0] != "NONE"


def ready(spec: pb.ServiceSpec, status: pb.TaskStatus) -> bool:
    """A task that counts as up: RUNNING and, with a health check, healthy."""
    if status.state != pb.RUNNING:
        return False
    return not has_healthcheck(spec) or status.health == pb.HEALTH_HEALTHY


def state_word(status: pb.UpdateStatus) -> str:
    """docker's word for the update state, "" when no update ran."""
    return UPDATE_STATES.get(status.state, "")


def respecced(service: pb.Service, spec: pb.ServiceSpec, now_ns: int) -> pb.Service:
    """``service`` after a user's ``svc update`` to ``spec``: a new spec version, and no update state
    (the supervisor starts a new update if tasks are now outdated; a paused one resumes this way).
    The previous spec (what a rollback goes back to) only moves when the spec really changed."""
    out = pb.Service()
    out.CopyFrom(service)
    if spec != service.spec:
        out.previous_spec.CopyFrom(service.spec)
    out.spec.CopyFrom(spec)
    out.spec_version = service.spec_version + 1
    out.meta.updated_at_ns = now_ns
    out.ClearField("update_status")
    return out


def rolled_back(service: pb.Service, now_ns: int, message: str) -> pb.Service:
    """``service`` going back to its previous spec (which becomes the one after it), the rollback starting now."""
    out = pb.Service()
    out.CopyFrom(service)
    out.spec.CopyFrom(service.previous_spec)
    out.previous_spec.CopyFrom(service.spec)
    out.spec_version = service.spec_version + 1
    out.meta.updated_at_ns = now_ns
    out.update_status.CopyFrom(
        pb.UpdateStatus(state=pb.UpdateStatus.ROLLBACK_STARTED, started_at_ns=now_ns, message=message)
    )
    return out
