"""Property tests: from any starting state the orchestrators converge, never two live tasks per slot."""

from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.manager.orchestrator import globalmode, replicated
from shoal.manager.orchestrator.types import Actions, new_task
from shoal.proto import types_pb2 as pb
from shoal.views import TaskView

NOW = 10**15
STATES = [pb.PENDING, pb.ASSIGNED, pb.RUNNING, pb.COMPLETE, pb.SHUTDOWN, pb.FAILED]
DESIRED = [pb.RUNNING, pb.SHUTDOWN, pb.REMOVE]

task_st = st.tuples(st.integers(1, 8), st.sampled_from(STATES), st.sampled_from(DESIRED), st.sampled_from(["n1", "n2", "gone"]))


def service(replicas: int, mode=pb.ServiceSpec.REPLICATED) -> pb.Service:
    s = pb.Service(id="s", spec_version=1)
    s.spec.name = "web"
    s.spec.mode = mode
    s.spec.replicas = replicas
    s.spec.restart_policy.delay_ns = 0
    return s


def apply(tasks: dict[str, TaskView], acts: Actions) -> None:
    """What the world does with the actions: agents stop what is no longer wanted, tasks start."""
    for tid in acts.delete:
        tasks.pop(tid, None)
    for tid, desired in acts.set_desired.items():
        t = tasks[tid].task
        t.desired_state = desired
    for t in acts.create:
        tasks[t.id] = TaskView(t, t.status)
    for tid, v in list(tasks.items()):
        st_ = v.status.state
        if v.task.desired_state != pb.RUNNING and st_ < pb.COMPLETE:
            tasks[tid] = TaskView(v.task, pb.TaskStatus(state=pb.SHUTDOWN, timestamp_ns=NOW))
        elif v.task.desired_state == pb.RUNNING and st_ < pb.RUNNING:  # scheduled and started
            v.task.node_id = v.task.node_id or "n1"
            tasks[tid] = TaskView(v.task, pb.TaskStatus(state=pb.RUNNING, timestamp_ns=NOW))


def live(tasks: dict[str, TaskView]) -> list[TaskView]:
    return [v for v in tasks.values() if v.task.desired_state == pb.RUNNING and v.status.state < pb.COMPLETE]


def ok(node_id: str) -> bool:
    return node_id in ("n1", "n2")


@settings(max_examples=200, deadline=None)
@given(replicas=st.integers(0, 6), start=st.lists(task_st, max_size=12))
def test_replicated_converges_with_one_live_task_per_slot(replicas, start):
    svc = service(replicas)
    tasks: dict[str, TaskView] = {}
    for i, (slot, state, desired, node_id) in enumerate(start):
        t = new_task(svc, slot, NOW - 10**9 + i, node_id=node_id if state >= pb.ASSIGNED else "")
        t.desired_state = desired
        tasks[t.id] = TaskView(t, pb.TaskStatus(state=state, timestamp_ns=NOW - 10**9))
    for _ in range(6):
        apply(tasks, replicated.reconcile(svc, list(tasks.values()), ok, NOW))
        started = [v.task.slot for v in live(tasks) if v.status.state == pb.RUNNING]
        assert len(started) == len(set(started)), "never two running tasks in one slot"
    running = live(tasks)
    slots = [v.task.slot for v in running]
    assert sorted(slots) == list(range(1, replicas + 1)), "one live task per slot, for exactly the wanted slots"
    assert all(v.status.state == pb.RUNNING and ok(v.task.node_id) for v in running)
    assert not replicated.reconcile(svc, list(tasks.values()), ok, NOW).create


@settings(max_examples=200, deadline=None)
@given(start=st.lists(task_st, max_size=10), active=st.sets(st.sampled_from(["n1", "n2", "n3"])))
def test_global_converges_to_one_task_per_eligible_node(start, active):
    svc = service(0, pb.ServiceSpec.GLOBAL)
    nodes = {nid: pb.Node(id=nid) for nid in ("n1", "n2", "n3")}
    for nid, n in nodes.items():
        n.spec.availability = pb.NodeSpec.ACTIVE if nid in active else pb.NodeSpec.DRAIN
    tasks: dict[str, TaskView] = {}
    for i, (_slot, state, desired, node_id) in enumerate(start):
        t = new_task(svc, 0, NOW - 10**9 + i, node_id=node_id)
        t.desired_state = desired
        tasks[t.id] = TaskView(t, pb.TaskStatus(state=state, timestamp_ns=NOW - 10**9))
    for _ in range(6):
        apply(tasks, globalmode.reconcile(svc, list(tasks.values()), nodes, lambda _n: True, NOW))
    assert sorted(v.task.node_id for v in live(tasks)) == sorted(active)
