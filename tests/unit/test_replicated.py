"""The replicated orchestrator's decisions on plain data."""

from shoal.manager.orchestrator.replicated import reconcile
from shoal.manager.orchestrator.types import new_task
from shoal.proto import types_pb2 as pb
from shoal.views import TaskView

NOW = 1_000 * 10**9


def service(replicas=3, condition=pb.RestartPolicy.ANY, delay_s=5, max_attempts=0) -> pb.Service:
    s = pb.Service(id="svc", spec_version=1)
    s.spec.name = "web"
    s.spec.replicas = replicas
    s.spec.restart_policy.condition = condition
    s.spec.restart_policy.delay_ns = delay_s * 10**9
    s.spec.restart_policy.max_attempts = max_attempts
    return s


def view(svc, slot, state, desired=pb.RUNNING, node="n1", created=0, ts=None) -> TaskView:
    t = new_task(svc, slot, created or NOW - 100 * 10**9, node_id=node)
    t.desired_state = desired
    st = pb.TaskStatus(state=state, timestamp_ns=ts if ts is not None else NOW - 50 * 10**9)
    return TaskView(t, st)


def ready(_node):
    return True


def test_creates_one_task_per_missing_slot():
    acts = reconcile(service(3), [], ready, NOW)
    assert sorted(t.slot for t in acts.create) == [1, 2, 3]
    assert all(t.desired_state == pb.RUNNING and t.status.state == pb.PENDING for t in acts.create)


def test_converged_service_needs_nothing():
    svc = service(2)
    tasks = [view(svc, 1, pb.RUNNING), view(svc, 2, pb.RUNNING)]
    assert not reconcile(svc, tasks, ready, NOW)


def test_scale_down_removes_highest_slots():
    svc = service(1)
    tasks = [view(svc, s, pb.RUNNING) for s in (1, 2, 3)]
    acts = reconcile(svc, tasks, ready, NOW)
    removed = {t.task.slot for t in tasks if acts.set_desired.get(t.id) == pb.REMOVE}
    assert removed == {2, 3}
    assert not acts.create


def test_removed_tasks_are_deleted_once_they_stopped():
    svc = service(1)
    gone = view(svc, 2, pb.SHUTDOWN, desired=pb.REMOVE)
    acts = reconcile(svc, [view(svc, 1, pb.RUNNING), gone], ready, NOW)
    assert acts.delete == [gone.id]


def test_failed_task_is_restarted_after_the_delay():
    svc = service(1, delay_s=5)
    failed = view(svc, 1, pb.FAILED, ts=NOW - 2 * 10**9)  # ended 2 s ago
    acts = reconcile(svc, [failed], ready, NOW)
    assert acts.set_desired == {failed.id: pb.SHUTDOWN}
    assert not acts.create
    assert acts.wake_at_ns == NOW + 3 * 10**9
    later = reconcile(svc, [failed], ready, NOW + 3 * 10**9)
    assert [t.slot for t in later.create] == [1]


def test_restart_condition_none_and_on_failure():
    svc = service(1, condition=pb.RestartPolicy.NONE, delay_s=0)
    assert not reconcile(svc, [view(svc, 1, pb.FAILED)], ready, NOW).create
    svc = service(1, condition=pb.RestartPolicy.ON_FAILURE, delay_s=0)
    assert not reconcile(svc, [view(svc, 1, pb.COMPLETE)], ready, NOW).create
    assert reconcile(svc, [view(svc, 1, pb.FAILED)], ready, NOW).create


def test_max_attempts_stops_restarting():
    svc = service(1, delay_s=0, max_attempts=2)
    tasks = [view(svc, 1, pb.FAILED, desired=pb.SHUTDOWN, created=NOW - i * 10**9) for i in (30, 20, 10)]
    assert not reconcile(svc, tasks, ready, NOW).create
    assert reconcile(svc, tasks[:2], ready, NOW).create


def test_task_on_a_down_node_is_replaced_at_once():
    svc = service(1, delay_s=60)
    lost = view(svc, 1, pb.RUNNING, node="dead")
    acts = reconcile(svc, [lost], lambda n: n != "dead", NOW)
    assert acts.set_desired == {lost.id: pb.SHUTDOWN}
    assert [t.slot for t in acts.create] == [1]


def test_removed_service_removes_every_task():
    svc = service(2)
    running = view(svc, 1, pb.RUNNING)
    pending = view(svc, 2, pb.PENDING, node="")
    acts = reconcile(None, [running, pending], ready, NOW)
    assert acts.set_desired == {running.id: pb.REMOVE, pending.id: pb.REMOVE}
    pending.task.desired_state = pb.REMOVE
    running.task.desired_state = pb.REMOVE
    acts = reconcile(None, [running, pending], ready, NOW)
    assert acts.delete == [pending.id], "a running task is deleted only after it stopped"


def test_history_is_capped_per_slot():
    svc = service(1, delay_s=0)
    old = [view(svc, 1, pb.FAILED, desired=pb.SHUTDOWN, created=NOW - i * 10**9) for i in range(10, 3, -1)]
    live = view(svc, 1, pb.RUNNING, created=NOW)
    acts = reconcile(svc, [*old, live], ready, NOW, history_limit=5)
    assert sorted(acts.delete) == sorted(t.id for t in old[:3]), "oldest go first; 4 old + 1 live are kept"


def test_a_scale_up_to_ten_thousand_creates_one_batch_and_asks_for_the_next_pass_at_once():
    from shoal.manager.orchestrator.replicated import CREATE_BATCH

    svc = service(replicas=10_000)
    running = [view(svc, slot, pb.RUNNING) for slot in range(1, 1001)]
    acts = reconcile(svc, running, ready, NOW)
    assert [t.slot for t in acts.create] == list(range(1001, 1001 + CREATE_BATCH))
    assert acts.wake_at_ns == NOW and not acts.set_desired and not acts.delete
    done = [view(svc, 1, pb.COMPLETE, desired=pb.SHUTDOWN, created=NOW - 10**9 * k) for k in range(2, 9)]
    acts = reconcile(svc, [*running[1:], *done, view(svc, 1, pb.RUNNING)], ready, NOW, history_limit=5)
    assert len(acts.delete) == 3, "a slot past its history still has its oldest tasks reaped"


def run_failing_slot(svc: pb.Service, history_limit: int, passes: int = 60) -> tuple[int, int]:
    """Reconcile a one-slot service whose every task fails at once; (tasks created, tasks left in the store)."""
    store: dict[str, TaskView] = {}
    created = 0
    for i in range(passes):
        now = NOW + i * 10**9
        acts = reconcile(svc, list(store.values()), ready, now, history_limit)
        for tid, desired in acts.set_desired.items():
            store[tid].task.desired_state = desired
        for tid in acts.delete:
            del store[tid]
        for t in acts.create:
            created += 1
            store[t.id] = TaskView(t, pb.TaskStatus(state=pb.FAILED, timestamp_ns=now))
    return created, len(store)


def test_max_attempts_holds_when_it_is_larger_than_the_task_history():
    # The reaper kept only history_limit ended tasks, the rule counted the ended tasks it saw: with 7
    # attempts and a history of 5 the count never passed 7 and the slot restarted forever.
    svc = service(1, delay_s=0, max_attempts=7)
    created, kept = run_failing_slot(svc, history_limit=5)
    assert created == 8, "the first task and its 7 restarts, then no more"
    assert kept == 8, "the ended tasks the rule counts stay until the slot is done with them"
    assert run_failing_slot(service(1, delay_s=0, max_attempts=2), history_limit=5) == (3, 3)
    created, kept = run_failing_slot(service(1, delay_s=0), history_limit=5, passes=20)
    assert created == 20, "no limit: a restart every pass"
    assert kept <= 5 + 2, "the history, plus the task just ended and its replacement (a pass behind)"
