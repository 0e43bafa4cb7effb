"""The replicated-job orchestrator: completions, concurrency, retries, new runs."""

from shoal.manager.orchestrator.jobs import reconcile
from shoal.manager.orchestrator.types import new_task
from shoal.proto import types_pb2 as pb
from shoal.views import TaskView

NOW = 1_000 * 10**9


def job(replicas=3, max_concurrent=0, condition=pb.RestartPolicy.ON_FAILURE, max_attempts=0, version=1) -> pb.Service:
    s = pb.Service(id="job", spec_version=version)
    s.spec.name = "batch"
    s.spec.mode = pb.ServiceSpec.REPLICATED_JOB
    s.spec.replicas = replicas
    s.spec.max_concurrent = max_concurrent
    s.spec.restart_policy.condition = condition
    s.spec.restart_policy.delay_ns = 0
    s.spec.restart_policy.max_attempts = max_attempts
    return s


def view(svc, slot, state, desired=pb.RUNNING, version=None, created=0) -> TaskView:
    t = new_task(svc, slot, created or NOW - 100 * 10**9, node_id="n1")
    t.desired_state = desired
    if version is not None:
        t.spec_version = version
    return TaskView(t, pb.TaskStatus(state=state, timestamp_ns=NOW - 10**9))


def ok(_nid):
    return True


def test_starts_at_most_max_concurrent():
    acts = reconcile(job(5, max_concurrent=2), [], ok, NOW)
    assert sorted(t.slot for t in acts.create) == [1, 2]


def test_completion_is_final_and_frees_a_place():
    svc = job(3, max_concurrent=2, condition=pb.RestartPolicy.ANY)
    done, running = view(svc, 1, pb.COMPLETE), view(svc, 2, pb.RUNNING)
    acts = reconcile(svc, [done, running], ok, NOW)
    assert acts.set_desired == {done.id: pb.COMPLETE}
    assert [t.slot for t in acts.create] == [3]


def test_all_complete_needs_nothing_more():
    svc = job(2)
    tasks = [view(svc, 1, pb.COMPLETE, desired=pb.COMPLETE), view(svc, 2, pb.COMPLETE, desired=pb.COMPLETE)]
    assert not reconcile(svc, tasks, ok, NOW)


def test_failure_is_retried_in_its_slot_until_max_attempts():
    svc = job(1, max_attempts=1)
    first = view(svc, 1, pb.FAILED, created=NOW - 10 * 10**9)
    acts = reconcile(svc, [first], ok, NOW)
    assert [t.slot for t in acts.create] == [1]
    second = view(svc, 1, pb.FAILED, desired=pb.SHUTDOWN, created=NOW - 5 * 10**9)
    first.task.desired_state = pb.SHUTDOWN
    assert not reconcile(svc, [first, second], ok, NOW).create


def test_new_spec_version_stops_old_tasks_and_runs_again():
    svc = job(1, version=2)
    old_done = view(svc, 1, pb.COMPLETE, desired=pb.COMPLETE, version=1)
    acts = reconcile(svc, [old_done], ok, NOW)
    assert [t.slot for t in acts.create] == [1]


def test_task_on_lost_node_is_replaced():
    svc = job(1)
    t = view(svc, 1, pb.RUNNING)
    acts = reconcile(svc, [t], lambda nid: False, NOW)
    assert acts.set_desired == {t.id: pb.SHUTDOWN}
    assert [c.slot for c in acts.create] == [1]
