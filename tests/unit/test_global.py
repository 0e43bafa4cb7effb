"""The global orchestrator's decisions on plain data: one task per eligible node, following nodes."""

from shoal.manager.orchestrator.globalmode import reconcile
from shoal.manager.orchestrator.types import new_task
from shoal.manager.placement import eligible_nodes
from shoal.proto import types_pb2 as pb
from shoal.views import TaskView

NOW = 1_000 * 10**9


def service(job=False, constraints=(), condition=pb.RestartPolicy.ANY, version=1) -> pb.Service:
    s = pb.Service(id="svc", spec_version=version)
    s.spec.name = "agent"
    s.spec.mode = pb.ServiceSpec.GLOBAL_JOB if job else pb.ServiceSpec.GLOBAL
    s.spec.placement.constraints.extend(constraints)
    s.spec.restart_policy.condition = condition
    s.spec.restart_policy.delay_ns = 5 * 10**9
    return s


def node(nid, availability=pb.NodeSpec.ACTIVE, labels=None) -> pb.Node:
    n = pb.Node(id=nid)
    n.spec.availability = availability
    n.spec.labels.update(labels or {})
    return n


def nodes(*ns) -> dict[str, pb.Node]:
    return {n.id: n for n in ns}


def view(svc, node_id, state, desired=pb.RUNNING, created=None, ts=None, version=None) -> TaskView:
    t = new_task(svc, 0, created or NOW - 100 * 10**9, node_id=node_id)
    t.desired_state = desired
    if version is not None:
        t.spec_version = version
    return TaskView(t, pb.TaskStatus(state=state, timestamp_ns=ts if ts is not None else NOW - 50 * 10**9))


def up(_nid):
    return True


def test_one_task_per_active_node_created_with_its_node():
    svc = service()
    acts = reconcile(svc, [], nodes(node("a"), node("b"), node("p", pb.NodeSpec.PAUSE), node("d", pb.NodeSpec.DRAIN)), up, NOW)
    assert sorted(t.node_id for t in acts.create) == ["a", "b"]
    assert all(t.slot == 0 and t.status.state == pb.PENDING for t in acts.create)


def test_down_node_gets_nothing_and_its_task_is_stopped():
    svc = service()
    t = view(svc, "a", pb.RUNNING)
    acts = reconcile(svc, [t], nodes(node("a")), lambda nid: False, NOW)
    assert acts.set_desired == {t.id: pb.SHUTDOWN} and not acts.create


def test_drain_stops_pause_keeps():
    svc = service()
    on_drained, on_paused = view(svc, "d", pb.RUNNING), view(svc, "p", pb.RUNNING)
    acts = reconcile(svc, [on_drained, on_paused], nodes(node("d", pb.NodeSpec.DRAIN), node("p", pb.NodeSpec.PAUSE)), up, NOW)
    assert acts.set_desired == {on_drained.id: pb.SHUTDOWN}
    assert not acts.create


def test_node_back_to_active_gets_a_task_at_once_even_with_on_failure():
    svc = service(condition=pb.RestartPolicy.ON_FAILURE)
    stopped = view(svc, "a", pb.SHUTDOWN, desired=pb.SHUTDOWN, ts=NOW - 10**9)
    acts = reconcile(svc, [stopped], nodes(node("a")), up, NOW)
    assert [t.node_id for t in acts.create] == ["a"]


def test_constraint_change_moves_tasks_off_non_matching_nodes():
    svc = service(constraints=["node.labels.gpu==yes"])
    on_a, on_b = view(svc, "a", pb.RUNNING), view(svc, "b", pb.RUNNING)
    acts = reconcile(svc, [on_a, on_b], nodes(node("a", labels={"gpu": "yes"}), node("b")), up, NOW)
    assert acts.set_desired == {on_b.id: pb.SHUTDOWN}
    assert eligible_nodes(svc, nodes(node("a", labels={"gpu": "yes"}), node("b")), up) == ["a"]


def test_failed_task_restarts_after_delay_on_the_same_node():
    svc = service()
    failed = view(svc, "a", pb.FAILED, ts=NOW - 10**9)
    acts = reconcile(svc, [failed], nodes(node("a")), up, NOW)
    assert acts.set_desired == {failed.id: pb.SHUTDOWN}
    assert not acts.create and acts.wake_at_ns == NOW + 4 * 10**9


def test_removed_node_takes_its_tasks():
    svc = service()
    t = view(svc, "gone", pb.RUNNING)
    acts = reconcile(svc, [t], nodes(node("a")), up, NOW)
    assert acts.set_desired == {t.id: pb.REMOVE}
    assert [c.node_id for c in acts.create] == ["a"]


def test_global_job_runs_once_per_node():
    svc = service(job=True)
    done = view(svc, "a", pb.COMPLETE)
    acts = reconcile(svc, [done], nodes(node("a"), node("b")), up, NOW)
    assert acts.set_desired == {done.id: pb.COMPLETE}
    assert [t.node_id for t in acts.create] == ["b"]


def test_global_job_new_version_runs_again():
    svc = service(job=True, version=2)
    done = view(svc, "a", pb.COMPLETE, desired=pb.COMPLETE, version=1)
    acts = reconcile(svc, [done], nodes(node("a")), up, NOW)
    assert [t.node_id for t in acts.create] == ["a"]
