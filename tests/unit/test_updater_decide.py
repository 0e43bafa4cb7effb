"""The update supervisor's pure decision: parallelism, delay, order, health gate, failures, rollback, resume."""

from __future__ import annotations

from shoal import rollout
from shoal.manager.updater.decide import decide, survey
from shoal.proto import types_pb2 as pb
from shoal.rollout import rolled_back
from shoal.spec import with_defaults
from shoal.views import TaskView, new_task

S = 10**9
US = pb.UpdateStatus
T0 = 1_000 * S  # when the update started


def service(replicas: int = 4, image: str = "app:2", version: int = 2, **uc: object) -> pb.Service:
    spec = pb.ServiceSpec(name="web", replicas=replicas)
    spec.container.image = image
    spec.restart_policy.delay_ns = 5 * S
    for k, v in uc.items():
        setattr(spec.update_config, k, v)
    spec = with_defaults(spec)
    spec.update_config.monitor_ns = uc.get("monitor_ns", 0)  # type: ignore[assignment]
    prev = pb.ServiceSpec()
    prev.CopyFrom(spec)
    prev.container.image = "app:1"
    svc = pb.Service(id="svc1", spec=spec, previous_spec=prev, spec_version=version)
    return svc


def updating(svc: pb.Service, started: int = T0, state: int = US.UPDATING) -> pb.Service:
    svc.update_status.state = state  # type: ignore[assignment]
    svc.update_status.started_at_ns = started
    return svc


def task(svc: pb.Service, slot: int, state: int = pb.RUNNING, old: bool = False, created: int = 0, at: int = 0,
         desired: int = pb.RUNNING, health: int = pb.HEALTH_NONE, err: str = "", node: str = "") -> TaskView:  # fmt: skip
    t = new_task(svc, slot, created or (T0 - 100 * S if old else T0 + S), node_id=node or f"n{slot}")
    if old:
        t.spec.CopyFrom(svc.previous_spec)
        t.spec_version = svc.spec_version - 1
    t.desired_state = desired  # type: ignore[assignment]
    st = pb.TaskStatus(state=state, timestamp_ns=at or t.meta.created_at_ns, health=health, err=err)  # type: ignore[arg-type]
    return TaskView(t, st)


def olds(svc: pb.Service, n: int) -> list[TaskView]:
    return [task(svc, s, old=True) for s in range(1, n + 1)]


# ---- starting an update ---------------------------------------------------------------------------


def test_an_outdated_slot_starts_an_update_with_its_time_and_its_first_slots_in_the_same_pass() -> None:
    svc = service(parallelism=2)
    tasks = olds(svc, 4)
    plan = decide(svc, tasks, T0)
    assert plan.service is not None
    assert plan.service.update_status.state == US.UPDATING
    assert plan.service.update_status.started_at_ns == T0
    assert plan.service.update_status.message == "update in progress"
    assert plan.stop == [t.id for t in tasks[:2]] and not plan.create  # stop-first: slots 1 and 2 stop now
    first = service(parallelism=2, order=pb.UpdateConfig.START_FIRST)
    plan = decide(first, olds(first, 4), T0)
    assert plan.service is not None and [t.slot for t in plan.create] == [1, 2] and not plan.stop
    assert all(t.meta.created_at_ns >= plan.service.update_status.started_at_ns for t in plan.create)  # this update's


def test_a_failed_replacement_of_an_earlier_update_is_not_the_new_updates_failure() -> None:
    svc = service(max_failure_ratio=0.0)
    svc.update_status.state = US.COMPLETED  # type: ignore[assignment]
    svc.update_status.started_at_ns = T0 - 50 * S
    earlier = task(svc, 1, state=pb.FAILED, created=T0 - 40 * S, err="exit 1")  # that update's, long ago
    plan = decide(svc, [earlier, *olds(svc, 4)], T0)
    assert plan.service is not None and plan.service.update_status.state == US.UPDATING and plan.stop


def test_no_update_when_only_the_replica_count_or_labels_changed() -> None:
    svc = service()
    tasks = olds(svc, 4)
    for t in tasks:  # same task-relevant spec, older version (a scale or a label change bumped it)
        t.task.spec.CopyFrom(svc.spec)
        t.task.spec.labels["x"] = "old"
        t.task.spec.replicas = 9
    assert not decide(svc, tasks, T0)


def test_a_fresh_service_has_no_update() -> None:
    svc = service(version=1)
    assert not decide(svc, [task(svc, s) for s in (1, 2)], T0)


def test_force_update_counter_makes_every_task_outdated() -> None:
    svc = service()
    tasks = [task(svc, s) for s in (1, 2)]
    svc.spec.force_update = 1
    svc.spec_version += 1
    assert rollout.outdated(svc, tasks[0].task)
    assert decide(svc, tasks, T0).service is not None


# ---- stop-first, parallelism, delay ---------------------------------------------------------------


def test_stop_first_stops_parallelism_old_tasks_lowest_slots_first() -> None:
    svc = updating(service(parallelism=2))
    tasks = olds(svc, 4)
    plan = decide(svc, tasks, T0 + S)
    assert plan.stop == [tasks[0].id, tasks[1].id] and not plan.create and plan.service is None


def test_parallelism_zero_replaces_every_slot_at_once() -> None:
    svc = updating(service(parallelism=0))
    plan = decide(svc, olds(svc, 4), T0 + S)
    assert len(plan.stop) == 4


def test_slots_in_flight_hold_their_places_until_ready() -> None:
    svc = updating(service(parallelism=2))
    tasks = olds(svc, 4)
    tasks[0] = task(svc, 1, state=pb.STARTING)  # replaced, still starting
    tasks[1] = task(svc, 2, old=True, desired=pb.SHUTDOWN)  # old one stopping, slot not refilled yet
    assert not decide(svc, tasks, T0 + 2 * S)
    tasks[0] = task(svc, 1, state=pb.RUNNING)
    assert decide(svc, tasks, T0 + 2 * S).stop == [tasks[2].id]


def test_a_slot_whose_old_task_stopped_before_the_orchestrator_filled_it_is_in_flight() -> None:
    """stop-first: the old task's SHUTDOWN can reach the supervisor before the orchestrator's replacement
    does; the slot is still in flight, so the update neither completes nor starts another slot early."""
    svc = updating(service(parallelism=1))
    tasks = [task(svc, s, at=T0 + S) for s in (1, 2, 3)]  # replaced and ready
    tasks.append(task(svc, 4, state=pb.SHUTDOWN, old=True, desired=pb.SHUTDOWN))  # stopped, not refilled yet
    assert not decide(svc, tasks, T0 + 5 * S), "not completed while slot 4 waits for its new task"
    tasks = [task(svc, 1, state=pb.SHUTDOWN, old=True, desired=pb.SHUTDOWN), *olds(svc, 3)[1:]]
    assert not decide(svc, tasks, T0 + 5 * S), "slot 1 holds the only place: slot 2 waits"


def test_a_health_checked_replacement_counts_only_when_healthy() -> None:
    svc = updating(service(parallelism=1))
    svc.spec.container.healthcheck.test[:] = ["CMD", "true"]
    tasks = olds(svc, 2)
    tasks[0] = task(svc, 1, state=pb.RUNNING, health=pb.HEALTH_STARTING)
    assert not decide(svc, tasks, T0 + 2 * S)
    tasks[0] = task(svc, 1, state=pb.RUNNING, health=pb.HEALTH_HEALTHY)
    assert decide(svc, tasks, T0 + 2 * S).stop == [tasks[1].id]


def test_delay_spaces_batches_and_asks_to_be_woken() -> None:
    svc = updating(service(parallelism=1, delay_ns=10 * S))
    tasks = olds(svc, 3)
    tasks[0] = task(svc, 1, at=T0 + 5 * S)  # ready at +5 s
    plan = decide(svc, tasks, T0 + 8 * S)
    assert not plan.stop and plan.wake_at_ns == T0 + 15 * S
    assert decide(svc, tasks, T0 + 15 * S).stop == [tasks[1].id]


# ---- start-first ----------------------------------------------------------------------------------


def test_start_first_creates_the_replacement_in_the_same_slot_and_keeps_the_old_one() -> None:
    svc = updating(service(parallelism=2, order=pb.UpdateConfig.START_FIRST))
    tasks = olds(svc, 3)
    plan = decide(svc, tasks, T0 + S)
    assert not plan.stop
    assert [(t.slot, t.spec.container.image, t.spec_version) for t in plan.create] == [
        (1, "app:2", 2),
        (2, "app:2", 2),
    ]


def test_start_first_waits_while_the_replacement_starts_beside_the_old_task() -> None:
    svc = updating(service(parallelism=1, order=pb.UpdateConfig.START_FIRST))
    tasks = [*olds(svc, 2), task(svc, 1, state=pb.STARTING)]
    assert not decide(svc, tasks, T0 + 2 * S)
    tasks[-1] = task(svc, 1, state=pb.RUNNING)
    plan = decide(svc, tasks, T0 + 2 * S)
    assert [t.slot for t in plan.create] == [2] and not plan.stop  # slot 1's old task is the orchestrator's


def test_start_first_global_creates_on_the_old_tasks_node() -> None:
    svc = service(order=pb.UpdateConfig.START_FIRST, parallelism=0)
    svc.spec.mode = pb.ServiceSpec.GLOBAL
    svc.spec.ClearField("replicas")
    updating(svc)
    tasks = [task(svc, 0, old=True, node=n) for n in ("a", "b")]
    plan = decide(svc, tasks, T0 + S)
    assert sorted(t.node_id for t in plan.create) == ["a", "b"] and all(t.slot == 0 for t in plan.create)


# ---- completion and monitoring --------------------------------------------------------------------


def test_completes_a_monitoring_period_after_the_last_replacement_became_ready() -> None:
    svc = updating(service(monitor_ns=5 * S))
    tasks = [task(svc, s, at=T0 + 10 * S) for s in (1, 2)]
    plan = decide(svc, tasks, T0 + 12 * S)
    assert plan.service is None and plan.wake_at_ns == T0 + 15 * S
    done = decide(svc, tasks, T0 + 15 * S).service
    assert done is not None and done.update_status.state == US.COMPLETED
    assert done.update_status.completed_at_ns == T0 + 15 * S and done.update_status.started_at_ns == T0
    assert done.update_status.message == "update completed"


def test_a_completed_update_stays_completed() -> None:
    svc = updating(service(), state=US.COMPLETED)
    assert not decide(svc, [task(svc, 1), task(svc, 2)], T0 + 60 * S)


# ---- failures -------------------------------------------------------------------------------------


def test_a_failed_replacement_pauses_the_update_with_its_reason() -> None:
    svc = updating(service())
    tasks = [*olds(svc, 3), task(svc, 1, state=pb.FAILED, err="task: non-zero exit (1)")]
    tasks.pop(0)
    plan = decide(svc, tasks, T0 + 5 * S)
    assert plan.service is not None and not plan.stop and not plan.create
    st = plan.service.update_status
    assert st.state == US.PAUSED and st.started_at_ns == T0
    assert (
        st.message
        == f"update paused due to failure or early termination of task {tasks[-1].id}: task: non-zero exit (1)"
    )


def test_a_paused_update_does_nothing_until_the_user_acts() -> None:
    svc = updating(service(), state=US.PAUSED)
    assert not decide(svc, olds(svc, 3), T0 + 5 * S)
    rb = updating(service(), state=US.ROLLBACK_PAUSED)
    assert not decide(rb, olds(rb, 3), T0 + 5 * S)


def test_failures_up_to_the_max_ratio_are_tolerated() -> None:
    svc = updating(service(replicas=4, max_failure_ratio=0.5, parallelism=4))
    failed = [task(svc, s, state=pb.FAILED, err="boom") for s in (1, 2)]
    tasks = [*failed, task(svc, 1, state=pb.STARTING), task(svc, 2, state=pb.STARTING), *olds(svc, 4)[2:]]
    plan = decide(svc, tasks, T0 + 5 * S)
    assert plan.service is None and len(plan.stop) == 2  # 2 of 4 is not more than 0.5: go on
    tasks.append(task(svc, 3, state=pb.REJECTED, err="no image"))
    assert decide(svc, tasks, T0 + 5 * S).service.update_status.state == US.PAUSED  # type: ignore[union-attr]


def test_failure_action_continue_goes_on_and_retries_a_failed_slot_after_the_restart_delay() -> None:
    svc = updating(
        service(parallelism=1, failure_action=pb.UpdateConfig.CONTINUE, order=pb.UpdateConfig.START_FIRST)
    )
    tasks = [*olds(svc, 2), task(svc, 1, state=pb.FAILED, at=T0 + 2 * S, err="boom")]
    plan = decide(svc, tasks, T0 + 3 * S)
    assert plan.service is None and not plan.create and plan.wake_at_ns == T0 + 7 * S  # slot 1 waits out 5 s
    assert [t.slot for t in decide(svc, tasks, T0 + 7 * S).create] == [1]


def test_a_shutdown_replacement_is_not_a_failure() -> None:
    svc = updating(service())
    tasks = [*olds(svc, 2)[1:], task(svc, 1, state=pb.SHUTDOWN, desired=pb.SHUTDOWN), task(svc, 1)]
    assert decide(svc, tasks, T0 + 5 * S).stop == [tasks[0].id]


def test_failures_from_before_the_update_started_do_not_count() -> None:
    svc = updating(service())
    early = task(svc, 1, state=pb.FAILED, created=T0 - S, err="old failure")
    assert decide(svc, [early, *olds(svc, 2)], T0 + S).service is None


# ---- rollback -------------------------------------------------------------------------------------


def test_failure_action_rollback_puts_the_previous_spec_back_with_the_reason() -> None:
    svc = updating(service(failure_action=pb.UpdateConfig.ROLLBACK))
    tasks = [*olds(svc, 2)[1:], task(svc, 1, state=pb.FAILED, err="health check failed")]
    plan = decide(svc, tasks, T0 + 5 * S)
    assert plan.service is not None
    rb = plan.service
    assert rb.spec.container.image == "app:1" and rb.previous_spec.container.image == "app:2"
    assert rb.spec_version == svc.spec_version + 1
    assert rb.update_status.state == US.ROLLBACK_STARTED and rb.update_status.started_at_ns == T0 + 5 * S
    assert rb.update_status.message.startswith(
        "update rolled back due to failure or early termination of task"
    )
    assert rb.update_status.message.endswith(": health check failed")


def test_a_rollback_replaces_only_the_tasks_the_update_changed_by_the_rollback_config() -> None:
    svc = service(parallelism=1)
    svc.previous_spec.rollback_config.parallelism = (
        0  # the spec rolled back to carries the policy (as in SwarmKit)
    )
    updated = [task(svc, 1), task(svc, 2)]  # slots 1 and 2 got app:2
    untouched = task(svc, 3, old=True)
    rb = rolled_back(svc, T0 + 10 * S, "manually requested rollback")
    plan = decide(rb, [*updated, untouched], T0 + 11 * S)
    assert sorted(plan.stop) == sorted(
        t.id for t in updated
    )  # parallelism 0 from rollback_config; slot 3 stays


def test_a_rollback_completes_as_rollback_completed() -> None:
    svc = service()
    rb = rolled_back(svc, T0, "manually requested rollback")
    tasks = [task(rb, s, at=T0 + 3 * S) for s in (1, 2)]
    assert decide(rb, tasks, T0 + 4 * S).wake_at_ns == T0 + 8 * S  # rollback_config's default 5 s monitor
    st = decide(rb, tasks, T0 + 8 * S).service
    assert (
        st is not None
        and st.update_status.state == US.ROLLBACK_COMPLETED
        and st.update_status.message == "rollback completed"
    )


def test_a_failing_rollback_pauses_even_when_its_action_is_rollback() -> None:
    svc = service()
    svc.spec.rollback_config.failure_action = pb.UpdateConfig.ROLLBACK
    svc.previous_spec.rollback_config.failure_action = pb.UpdateConfig.ROLLBACK
    rb = rolled_back(svc, T0, "update rolled back")
    tasks = [task(rb, 1, state=pb.FAILED, err="boom", created=T0 + S), task(rb, 2, old=False)]
    tasks[1].task.spec.CopyFrom(svc.spec)
    tasks[1].task.spec_version = svc.spec_version
    st = decide(rb, tasks, T0 + 5 * S).service
    assert st is not None and st.update_status.state == US.ROLLBACK_PAUSED
    assert st.spec.container.image == rb.spec.container.image  # not rolled back again
    assert st.update_status.message.startswith("rollback paused due to failure or early termination of task")


def test_rollback_without_a_previous_spec_pauses() -> None:
    svc = updating(service(failure_action=pb.UpdateConfig.ROLLBACK))
    svc.ClearField("previous_spec")
    tasks = [task(svc, 1, state=pb.FAILED, err="x")]
    assert decide(svc, tasks, T0 + S).service.update_status.state == US.PAUSED  # type: ignore[union-attr]


# ---- resuming (a new leader) and odd inputs -------------------------------------------------------


def test_a_new_leader_resumes_from_the_stored_state_where_the_old_one_was() -> None:
    """Two slots already done, one in flight, one to do: the stored state is all a new leader needs."""
    svc = updating(service(parallelism=2))
    tasks = [
        task(svc, 1, at=T0 + 3 * S),
        task(svc, 2, at=T0 + 4 * S),
        task(svc, 3, state=pb.PREPARING),
        task(svc, 4, old=True),
    ]
    stored = pb.Service.FromString(svc.SerializeToString())  # what the new leader reads from etcd
    plan = decide(stored, tasks, T0 + 20 * S)
    assert plan.stop == [tasks[3].id] and plan.service is None
    slots = survey(stored, tasks, T0 + 20 * S)
    assert slots.in_flight == 1 and len(slots.ready_at) == 2


def test_slots_above_the_replica_count_are_left_to_the_orchestrator() -> None:
    svc = updating(service(replicas=2))
    plan = decide(svc, olds(svc, 4), T0 + S)
    assert plan.stop == [olds(svc, 4)[0].id] or len(plan.stop) == 1
    assert all(t.task.slot <= 2 for t in olds(svc, 4) if t.id in plan.stop)


def test_jobs_are_not_rolled() -> None:
    svc = service()
    svc.spec.mode = pb.ServiceSpec.REPLICATED_JOB
    assert not decide(svc, olds(svc, 2), T0)


def test_a_slot_waiting_for_the_restart_of_its_failed_task_is_not_done() -> None:
    """After a rollback the slot whose replacement failed is empty until the restart delay: the rollback waits for it."""
    svc = service()
    svc.spec.restart_policy.condition = pb.RestartPolicy.ANY
    rb = rollout.rolled_back(svc, T0, "update rolled back due to ...")
    failed = task(svc, 1, state=pb.FAILED, err="unhealthy", created=T0 - S)  # of the spec rolled back from
    kept = task(rb, 2, at=T0 - 50 * S)
    kept.task.spec_version = svc.spec_version - 1  # never updated: same spec as the one rolled back to
    assert not decide(rb, [failed, kept], T0 + 60 * S), "not completed while slot 1 waits for its restart"
    rb.spec.restart_policy.condition = kept.task.spec.restart_policy.condition = pb.RestartPolicy.NONE
    assert decide(rb, [failed, kept], T0 + 60 * S).service.update_status.state == US.ROLLBACK_COMPLETED  # type: ignore[union-attr]


def test_a_rollback_after_a_failure_keeps_its_reason_once_completed() -> None:
    svc = service()
    rb = rollout.rolled_back(
        svc, T0, "update rolled back due to failure or early termination of task t1: boom"
    )
    tasks = [
        task(rb, s, at=T0 - 50 * S, created=T0 - 60 * S) for s in (1, 2)
    ]  # nothing to replace: done at once
    st = decide(rb, tasks, T0 + S).service
    assert st is not None and st.update_status.state == US.ROLLBACK_COMPLETED
    assert (
        st.update_status.message
        == "rollback completed; update rolled back due to failure or early termination of task t1: boom"
    )
