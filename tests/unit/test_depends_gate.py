"""The depends_on gate (manager/scheduler/depends.py) on plain data, and the spec rules for it."""

from __future__ import annotations

import pytest

from shoal import spec as specs
from shoal.manager.scheduler.depends import TaskView, unmet, waiting
from shoal.proto import types_pb2 as pb

STARTED, HEALTHY, DONE = pb.ServiceDependency.STARTED, pb.ServiceDependency.HEALTHY, pb.ServiceDependency.COMPLETED_SUCCESSFULLY


def svc(name: str, mode: int = pb.ServiceSpec.REPLICATED, replicas: int | None = None) -> pb.Service:
    s = pb.Service(id=f"id-{name}", spec=pb.ServiceSpec(name=name, mode=mode))
    if replicas is not None:
        s.spec.replicas = replicas
    return s


def tv(state: int, slot: int = 1, desired: int = pb.RUNNING, health: int = pb.HEALTH_NONE, code: int = 0, at: int = 1) -> TaskView:
    return TaskView(slot, "n1", desired, state, health, code, at)


def dep(name: str, cond: int) -> pb.ServiceDependency:
    return pb.ServiceDependency(service=name, condition=cond)


def test_started_needs_every_task_that_should_run_to_be_running():
    db = svc("db")
    assert unmet(dep("db", STARTED), db, [tv(pb.RUNNING, 1), tv(pb.RUNNING, 2)]) == ""
    assert unmet(dep("db", STARTED), db, [tv(pb.RUNNING, 1), tv(pb.STARTING, 2)]) == "waiting for db: service_started"
    assert unmet(dep("db", STARTED), db, []) == "waiting for db: service_started"


def test_tasks_being_shut_down_or_ended_do_not_count():
    old = tv(pb.RUNNING, 1, desired=pb.SHUTDOWN)
    ended = tv(pb.FAILED, 2, code=1)
    assert unmet(dep("db", STARTED), svc("db"), [old, ended]) == "waiting for db: service_started"
    assert unmet(dep("db", STARTED), svc("db"), [old, ended, tv(pb.RUNNING, 2, at=2)]) == ""


def test_healthy_needs_every_running_task_healthy():
    db = svc("db")
    good, starting = tv(pb.RUNNING, 1, health=pb.HEALTH_HEALTHY), tv(pb.RUNNING, 2, health=pb.HEALTH_STARTING)
    assert unmet(dep("db", HEALTHY), db, [good]) == ""
    assert unmet(dep("db", HEALTHY), db, [good, starting]) == "waiting for db: service_healthy"
    assert unmet(dep("db", HEALTHY), db, [tv(pb.RUNNING, 1, health=pb.HEALTH_UNHEALTHY)]) == "waiting for db: service_healthy"


def test_healthy_on_a_service_without_a_health_check_says_so():
    assert unmet(dep("db", HEALTHY), svc("db"), [tv(pb.RUNNING)]) == "waiting for db: service_healthy (db runs without a health check)"


def test_a_missing_dependency_is_waited_for():
    assert unmet(dep("db", STARTED), None, []) == "waiting for db: service_started (no such service yet)"


def test_completed_successfully_needs_the_last_task_of_every_slot_to_exit_0():
    job = svc("migrate", pb.ServiceSpec.REPLICATED_JOB, replicas=2)
    ok1, ok2 = tv(pb.COMPLETE, 1, at=1), tv(pb.COMPLETE, 2, at=2)
    assert unmet(dep("migrate", DONE), job, [ok1, ok2]) == ""
    assert unmet(dep("migrate", DONE), job, [ok1]) != ""  # one of two completions
    assert unmet(dep("migrate", DONE), job, [ok1, tv(pb.RUNNING, 2)]) != ""  # still running
    assert unmet(dep("migrate", DONE), job, [ok1, tv(pb.FAILED, 2, code=1)]) != ""
    retried = [ok1, tv(pb.FAILED, 2, code=1, at=2), tv(pb.COMPLETE, 2, at=3)]
    assert unmet(dep("migrate", DONE), job, retried) == ""  # the retry of slot 2 succeeded


def test_completed_successfully_of_a_global_job_counts_each_node():
    job = svc("prep", pb.ServiceSpec.GLOBAL_JOB)
    a = TaskView(0, "n1", pb.COMPLETE, pb.COMPLETE, pb.HEALTH_NONE, 0, 1)
    b = TaskView(0, "n2", pb.COMPLETE, pb.FAILED, pb.HEALTH_NONE, 2, 1)
    assert unmet(dep("prep", DONE), job, [a]) == ""
    assert unmet(dep("prep", DONE), job, [a, b]) != ""
    assert unmet(dep("prep", DONE), job, []) != ""


def test_waiting_lists_each_unmet_dependency_and_judges_a_service_once():
    app = pb.ServiceSpec(name="app")
    app.depends_on.extend([dep("db", HEALTHY), dep("cache", STARTED)])
    pending = [pb.Task(id=f"t{i}", service_id="id-app", spec=app) for i in range(3)]
    free = pb.Task(id="free", service_id="id-other", spec=pb.ServiceSpec(name="other"))
    services = {"db": svc("db"), "cache": svc("cache")}
    views = {"id-db": [tv(pb.RUNNING, health=pb.HEALTH_STARTING)], "id-cache": [tv(pb.RUNNING)]}
    got = waiting([*pending, free], services, views)
    assert got == {f"t{i}": "waiting for db: service_healthy" for i in range(3)}
    views["id-cache"] = []
    assert waiting(pending, services, views)["t0"] == "waiting for db: service_healthy; waiting for cache: service_started"
    views = {"id-db": [tv(pb.RUNNING, health=pb.HEALTH_HEALTHY)], "id-cache": [tv(pb.RUNNING)]}
    assert waiting([*pending, free], services, views) == {}


@pytest.mark.parametrize(("deps", "message"), [
    ([dep("web", STARTED)], "cannot depend on itself"),
    ([dep("db", STARTED), dep("db", HEALTHY)], "listed twice"),
    ([dep("bad name", STARTED)], "is not a service name"),
    ([pb.ServiceDependency(service="db", condition=7)], "unknown condition"),
    ([dep(f"s{i}", STARTED) for i in range(101)], "at most 100"),
])  # fmt: skip
def test_bad_dependencies_are_refused_with_one_clear_message(deps, message):
    s = pb.ServiceSpec(name="web")
    s.container.image = "busybox"
    s.depends_on.extend(deps)
    with pytest.raises(specs.SpecError) as err:
        specs.validate(s)
    assert err.value.field == "depends_on" and message in str(err.value)
