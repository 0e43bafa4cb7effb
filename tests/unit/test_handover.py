"""The orchestrators keep a start-first replacement beside the task it replaces until it is ready."""

from shoal.manager.orchestrator import globalmode, replicated
from shoal.manager.orchestrator.restart import handover
from shoal.proto import types_pb2 as pb
from shoal.views import TaskView, new_task

NOW = 1_000 * 10**9


def service(version: int = 2, mode: int = pb.ServiceSpec.REPLICATED) -> pb.Service:
    s = pb.Service(id="svc", spec_version=version)
    s.spec.name = "web"
    s.spec.mode = mode  # type: ignore[assignment]
    if mode == pb.ServiceSpec.REPLICATED:
        s.spec.replicas = 1
    return s


def view(
    svc: pb.Service, state: int, version: int, created: int, node: str = "n1", slot: int = 1
) -> TaskView:
    t = new_task(svc, slot, created, node_id=node)
    t.spec_version = version
    return TaskView(t, pb.TaskStatus(state=state, timestamp_ns=created))  # type: ignore[arg-type]


def ok(_node: str) -> bool:
    return True


def test_a_starting_replacement_stays_beside_the_running_old_task() -> None:
    svc = service()
    old, new = view(svc, pb.RUNNING, 1, NOW - 100), view(svc, pb.STARTING, 2, NOW - 10, node="n2")
    acts = replicated.reconcile(svc, [old, new], ok, NOW)
    assert not acts.set_desired and not acts.create


def test_the_old_task_stops_once_the_replacement_runs() -> None:
    svc = service()
    old, new = view(svc, pb.RUNNING, 1, NOW - 100), view(svc, pb.RUNNING, 2, NOW - 10, node="n2")
    acts = replicated.reconcile(svc, [old, new], ok, NOW, load=lambda n: 0 if n == "n1" else 5)
    assert acts.set_desired == {old.id: pb.SHUTDOWN}  # the current spec wins, even on the busier node


def test_two_tasks_of_one_version_still_collapse_to_one() -> None:
    svc = service()
    a, b = view(svc, pb.RUNNING, 2, NOW - 100), view(svc, pb.STARTING, 2, NOW - 10)
    acts = replicated.reconcile(svc, [a, b], ok, NOW)
    assert acts.set_desired == {b.id: pb.SHUTDOWN}


def test_a_replacement_of_a_version_since_rolled_back_is_not_protected() -> None:
    svc = service(version=3)
    old, stale = view(svc, pb.RUNNING, 1, NOW - 100), view(svc, pb.STARTING, 2, NOW - 10)
    assert handover([old, stale], 3) == []
    acts = replicated.reconcile(svc, [old, stale], ok, NOW)
    assert acts.set_desired == {stale.id: pb.SHUTDOWN}


def test_global_service_hands_over_on_the_same_node() -> None:
    svc = service(mode=pb.ServiceSpec.GLOBAL)
    node = pb.Node(id="n1")
    old, new = view(svc, pb.RUNNING, 1, NOW - 100, slot=0), view(svc, pb.STARTING, 2, NOW - 10, slot=0)
    assert not globalmode.reconcile(svc, [old, new], {"n1": node}, ok, NOW).set_desired
    new = view(svc, pb.RUNNING, 2, NOW - 10, slot=0)
    assert globalmode.reconcile(svc, [old, new], {"n1": node}, ok, NOW).set_desired == {old.id: pb.SHUTDOWN}
