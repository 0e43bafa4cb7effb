"""A slot whose restart policy gave up during a rolling update (pure decision).

The restart policy's ``max_attempts`` (or condition ``none``) means nobody will start another task in
that slot: the update must not wait for one. Its failed replacements are the update's failures (the
failure action applies), and with ``continue`` the update goes on to the other slots and completes.
"""

from __future__ import annotations

from shoal.manager.updater.decide import decide, survey
from shoal.proto import types_pb2 as pb
from shoal.spec import with_defaults
from shoal.views import TaskView, new_task

S = 10**9
US = pb.UpdateStatus
T0 = 1_000 * S  # when the update started
CONTINUE, PAUSE, ROLLBACK = pb.UpdateConfig.CONTINUE, pb.UpdateConfig.PAUSE, pb.UpdateConfig.ROLLBACK


def service(action: int = CONTINUE, ratio: float = 0.0, order: int = pb.UpdateConfig.STOP_FIRST, replicas: int = 2,
            max_attempts: int = 2) -> pb.Service:  # fmt: skip
    spec = pb.ServiceSpec(name="web", replicas=replicas)
    spec.container.image = "app:2"
    spec.restart_policy.delay_ns = 5 * S
    spec.restart_policy.max_attempts = max_attempts
    spec.update_config.failure_action = action  # type: ignore[assignment]
    spec.update_config.max_failure_ratio = ratio
    spec.update_config.order = order  # type: ignore[assignment]
    spec = with_defaults(spec)
    spec.update_config.monitor_ns = 0
    prev = pb.ServiceSpec()
    prev.CopyFrom(spec)
    prev.container.image = "app:1"
    svc = pb.Service(id="svc1", spec=spec, previous_spec=prev, spec_version=2)
    svc.update_status.state = US.UPDATING
    svc.update_status.started_at_ns = T0
    return svc


def task(svc: pb.Service, slot: int, state: int, old: bool = False, at: int = 0, desired: int = pb.RUNNING) -> TaskView:
    t = new_task(svc, slot, at - S if at else (T0 - 100 * S if old else T0 + S), node_id=f"n{slot}")
    if old:
        t.spec.CopyFrom(svc.previous_spec)
        t.spec_version = 1
    t.desired_state = desired  # type: ignore[assignment]
    return TaskView(t, pb.TaskStatus(state=state, timestamp_ns=at or t.meta.created_at_ns, err="boom" if state == pb.FAILED else ""))  # type: ignore[arg-type]


def gave_up_slot_1(svc: pb.Service, attempts: int = 3) -> list[TaskView]:
    """Slot 1: its old task stopped by the update, then ``attempts`` replacements that each failed."""
    stopped = task(svc, 1, pb.SHUTDOWN, old=True, desired=pb.SHUTDOWN)
    failed = [task(svc, 1, pb.FAILED, at=T0 + (10 + i) * S, desired=pb.SHUTDOWN) for i in range(attempts)]
    return [stopped, *failed]


def test_a_slot_whose_restart_policy_gave_up_is_not_in_flight_and_the_update_moves_on() -> None:
    svc = service(action=CONTINUE)
    tasks = [*gave_up_slot_1(svc), task(svc, 2, pb.RUNNING, old=True)]
    slots = survey(svc, tasks, T0 + 20 * S)
    assert slots.in_flight == 0 and [t.task.slot for t in slots.todo] == [2] and len(slots.failures) == 3
    plan = decide(svc, tasks, T0 + 20 * S)
    assert plan.stop == [tasks[-1].id], "parallelism 1: the given-up slot no longer holds the only place"


def test_with_continue_the_update_completes_without_the_slot_that_gave_up() -> None:
    svc = service(action=CONTINUE)
    tasks = [*gave_up_slot_1(svc), task(svc, 2, pb.RUNNING, at=T0 + 12 * S)]
    plan = decide(svc, tasks, T0 + 20 * S)
    assert plan.service is not None and plan.service.update_status.state == US.COMPLETED
    svc.update_status.CopyFrom(plan.service.update_status)
    assert not decide(svc, tasks, T0 + 30 * S), "completed, and no new update starts for the empty slot"


def test_while_attempts_remain_a_slot_whose_replacement_failed_is_done_for_the_update() -> None:
    """SwarmKit's updater is done with a slot once its replacement reached RUNNING or later (failed included):
    with continue the update completes; the restart policy, not the update, tries the slot again. (It used
    to wait for the restarts: with the default policy, unlimited attempts, a failing image never completed.)"""
    svc = service(action=CONTINUE)
    tasks = [*gave_up_slot_1(svc, attempts=2), task(svc, 2, pb.RUNNING, at=T0 + 12 * S)]  # 2 ended: not more than 2
    assert survey(svc, tasks, T0 + 20 * S).in_flight == 0
    plan = decide(svc, tasks, T0 + 20 * S)
    assert plan.service is not None and plan.service.update_status.state == US.COMPLETED
    restarting = [*tasks, task(svc, 1, pb.STARTING, at=T0 + 16 * S)]  # the restart policy's next try, not ready yet
    assert survey(svc, restarting, T0 + 20 * S).in_flight == 0


def test_with_unlimited_restarts_and_continue_a_failing_update_completes() -> None:
    svc = service(action=CONTINUE, max_attempts=0)
    failed = [task(svc, s, pb.FAILED, at=T0 + (10 + s) * S, desired=pb.SHUTDOWN) for s in (1, 2)]
    olds = [task(svc, s, pb.SHUTDOWN, old=True, desired=pb.SHUTDOWN) for s in (1, 2)]
    retries = [task(svc, s, pb.PREPARING, at=T0 + 20 * S) for s in (1, 2)]
    plan = decide(svc, [*olds, *failed, *retries], T0 + 21 * S)
    assert plan.service is not None and plan.service.update_status.state == US.COMPLETED


def test_pause_and_rollback_apply_when_the_failures_exceed_the_ratio() -> None:
    paused = service(action=PAUSE, ratio=0.5)
    tasks = [*gave_up_slot_1(paused), task(paused, 2, pb.RUNNING, at=T0 + 12 * S)]
    st = decide(paused, tasks, T0 + 20 * S).service
    assert st is not None and st.update_status.state == US.PAUSED and "failure or early termination" in st.update_status.message
    back = service(action=ROLLBACK, ratio=0.5)
    st = decide(back, [*gave_up_slot_1(back), task(back, 2, pb.RUNNING, at=T0 + 12 * S)], T0 + 20 * S).service
    assert st is not None and st.update_status.state == US.ROLLBACK_STARTED and st.spec.container.image == "app:1"


def test_start_first_stops_trying_a_slot_its_restart_policy_gave_up_on() -> None:
    """start-first: the old task keeps serving and the update made each replacement; after max_attempts
    failures no further one is made (it was retried forever), and the update completes with continue."""
    svc = service(action=CONTINUE, order=pb.UpdateConfig.START_FIRST, replicas=1)
    tasks = [task(svc, 1, pb.RUNNING, old=True), *gave_up_slot_1(svc)[1:]]
    plan = decide(svc, tasks, T0 + 60 * S)
    assert not plan.create and plan.service is not None and plan.service.update_status.state == US.COMPLETED
    one_left = [task(svc, 1, pb.RUNNING, old=True), *gave_up_slot_1(svc, attempts=2)[1:]]
    assert [t.slot for t in decide(svc, one_left, T0 + 60 * S).create] == [1], "an attempt left: tried again"


def test_condition_none_gives_up_at_the_first_failure() -> None:
    svc = service(action=CONTINUE, max_attempts=0)
    svc.spec.restart_policy.condition = pb.RestartPolicy.NONE
    tasks = [*gave_up_slot_1(svc, attempts=1), task(svc, 2, pb.RUNNING, old=True)]
    assert [t.task.slot for t in survey(svc, tasks, T0 + 20 * S).todo] == [2]
