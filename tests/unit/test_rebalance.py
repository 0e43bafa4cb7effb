"""Opt-in rebalancing decisions on plain data, and which task a slot keeps among several live ones."""

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.manager.orchestrator import rebalance, replicated
from shoal.manager.orchestrator.rebalance import NodeLoad
from shoal.manager.orchestrator.types import Actions, new_task
from shoal.proto import types_pb2 as pb
from shoal.views import TaskView

NOW = 1_000 * 10**9


def service(replicas=4, on=True, parallelism=1) -> pb.Service:
    s = pb.Service(id="svc", spec_version=1)
    s.spec.name = "web"
    s.spec.replicas = replicas
    s.spec.rebalance = on
    s.spec.update_config.parallelism = parallelism
    return s


def view(svc, slot, node, state=pb.RUNNING, desired=pb.RUNNING, created=0) -> TaskView:
    t = new_task(svc, slot, created or NOW - 100 * 10**9 + slot, node_id=node)
    t.desired_state = desired
    return TaskView(t, pb.TaskStatus(state=state, timestamp_ns=NOW - 50 * 10**9))


def placed(svc, layout: dict[str, int]) -> list[TaskView]:
    """Running tasks in slots 1..n, ``layout[node]`` of them on each node, in node order."""
    out, slot = [], 1
    for node, n in layout.items():
        for _ in range(n):
            out.append(view(svc, slot, node))
            slot += 1
    return out


def nodes(*ids: str, room=99) -> dict[str, NodeLoad]:
    return {i: NodeLoad(room=room) for i in ids}


def test_a_joining_node_gets_one_task_per_step_with_parallelism_one():
    svc = service(4)
    tasks = placed(svc, {"a": 2, "b": 2})
    moved = rebalance.moves(svc, tasks, nodes("a", "b", "c"))
    assert len(moved) == 1
    assert moved[0].task.node_id == "b"  # a tie on the service's count: the highest node id, as the scheduler's mirror
    assert moved[0].task.slot == 4  # the highest slot on that node


def test_without_the_flag_nothing_moves():
    svc = service(4, on=False)
    assert rebalance.moves(svc, placed(svc, {"a": 4}), nodes("a", "b", "c")) == []


def test_nothing_moves_while_a_move_is_in_flight():
    svc = service(4)
    tasks = placed(svc, {"a": 3})
    tasks.append(view(svc, 4, "c", state=pb.ASSIGNED))  # the replacement of an earlier move, not running yet
    assert rebalance.moves(svc, tasks, nodes("a", "b", "c")) == []


def test_parallelism_bounds_the_moves_and_zero_means_all():
    svc = service(6, parallelism=2)
    tasks = placed(svc, {"a": 6})
    assert len(rebalance.moves(svc, tasks, nodes("a", "b", "c"))) == 2
    svc0 = service(6, parallelism=0)
    tasks0 = placed(svc0, {"a": 6})
    assert len(rebalance.moves(svc0, tasks0, nodes("a", "b", "c"))) == 4  # 6/0/0 -> 2/2/2


def test_even_spread_needs_nothing():
    svc = service(5, parallelism=0)
    assert rebalance.moves(svc, placed(svc, {"a": 2, "b": 2, "c": 1}), nodes("a", "b", "c")) == []


def test_a_node_without_room_is_not_a_target():
    svc = service(4, parallelism=0)
    tasks = placed(svc, {"a": 4})
    load = {"a": NodeLoad(room=0), "b": NodeLoad(room=1), "c": NodeLoad(room=0)}
    moved = rebalance.moves(svc, tasks, load)
    assert len(moved) == 1  # only b can take one more: 3/1/0 is as even as it gets


def test_a_node_where_the_service_failed_is_the_last_target():
    svc = service(4, parallelism=0)
    tasks = placed(svc, {"a": 4})
    load = {"a": NodeLoad(room=9), "b": NodeLoad(room=9, failed=True), "c": NodeLoad(room=9)}
    moved = rebalance.moves(svc, tasks, load)
    # the scheduler fills c first (2/0/2 after two moves); a third replacement would go to c again,
    # not to b, so moving more would only churn
    assert len(moved) == 2


def test_tasks_on_ineligible_nodes_stay_and_do_not_count():
    svc = service(4, parallelism=0)
    tasks = placed(svc, {"paused": 2, "a": 2})
    assert rebalance.moves(svc, tasks, nodes("a", "b")) and all(t.task.node_id == "a" for t in rebalance.moves(svc, tasks, nodes("a", "b")))


def test_services_with_placement_preferences_are_not_rebalanced():
    svc = service(4)
    svc.spec.placement.preferences.add(spread="node.labels.zone")
    assert rebalance.moves(svc, placed(svc, {"a": 4}), nodes("a", "b")) == []


def test_a_move_shuts_down_and_recreates_the_slot():
    svc = service(4)
    tasks = placed(svc, {"a": 4})
    acts = Actions()
    rebalance.add_moves(svc, rebalance.moves(svc, tasks, nodes("a", "b")), acts, NOW)
    (moved_id,) = acts.set_desired
    assert acts.set_desired[moved_id] == pb.SHUTDOWN
    (new,) = acts.create
    assert new.slot == next(t.task.slot for t in tasks if t.id == moved_id)
    assert not new.node_id and new.status.state == pb.PENDING
    after = [*tasks, TaskView(new, new.status)]
    after = [TaskView(t.task, t.status) for t in after]
    for t in after:
        if t.id == moved_id:
            t.task.desired_state = pb.SHUTDOWN
    assert not replicated.reconcile(svc, after, lambda _n: True, NOW), "the replicated orchestrator accepts the move"


def _simulate(svc, tasks: list[TaskView], node_ids: list[str]) -> Counter[str]:
    """Apply moves until none is left, placing each replacement where the scheduler would."""
    live = {t.id: t for t in tasks}
    for _ in range(50):
        moved = rebalance.moves(svc, list(live.values()), nodes(*node_ids))
        if not moved:
            break
        counts = Counter(t.task.node_id for t in live.values())
        for t in moved:
            del live[t.id]
            counts[t.task.node_id] -= 1
        for t in moved:
            dst = min(node_ids, key=lambda n: (counts[n], n))
            counts[dst] += 1
            nt = view(svc, t.task.slot, dst)
            live[nt.id] = nt
    return Counter(t.task.node_id for t in live.values())


@settings(max_examples=150, deadline=None)
@given(layout=st.lists(st.integers(0, 7), min_size=1, max_size=5), extra=st.integers(0, 3), par=st.integers(0, 3))
def test_rebalancing_converges_to_an_even_spread(layout, extra, par):
    node_ids = [f"n{i}" for i in range(len(layout) + extra)]
    svc = service(sum(layout), parallelism=par)
    tasks = placed(svc, {f"n{i}": n for i, n in enumerate(layout)})
    counts = _simulate(svc, tasks, node_ids)
    per_node = [counts[n] for n in node_ids]
    assert max(per_node) - min(per_node) <= 1
    assert sum(per_node) == sum(layout)


def test_a_slot_with_two_live_tasks_keeps_the_one_on_the_least_loaded_node():
    svc = service(2, on=False)
    busy, calm = view(svc, 1, "busy", created=NOW - 10), view(svc, 1, "calm", created=NOW - 20)
    other = view(svc, 2, "busy")
    load = {"busy": 2, "calm": 1}.__getitem__
    acts = replicated.reconcile(svc, [busy, calm, other], lambda _n: True, NOW, load=load)
    assert acts.set_desired == {busy.id: pb.SHUTDOWN}


def test_a_running_task_is_kept_over_one_not_yet_running():
    svc = service(1, on=False)
    running, pending = view(svc, 1, "busy", created=NOW - 20), view(svc, 1, "calm", state=pb.ASSIGNED, created=NOW - 10)
    load = {"busy": 5, "calm": 0}.__getitem__
    acts = replicated.reconcile(svc, [running, pending], lambda _n: True, NOW, load=load)
    assert acts.set_desired == {pending.id: pb.SHUTDOWN}


def test_equal_load_keeps_the_newest_task():
    svc = service(1, on=False)
    old, new = view(svc, 1, "a", created=NOW - 20), view(svc, 1, "b", created=NOW - 10)
    acts = replicated.reconcile(svc, [old, new], lambda _n: True, NOW, load=lambda _n: 1)
    assert acts.set_desired == {old.id: pb.SHUTDOWN}


def test_room_counts_reservations_ports_and_the_per_node_limit():
    from shoal.manager.placement import room
    from shoal.views import NodeInfo

    def info(nid, availability=pb.NodeSpec.ACTIVE, ready=True, labels=None):
        n = pb.Node(id=nid)
        n.spec.availability = availability
        n.spec.labels.update(labels or {})
        n.description.memory_bytes = 1 << 30
        n.description.nano_cpus = 4 * 10**9
        return NodeInfo(n, ready=ready)

    spec = pb.ServiceSpec(name="web")
    spec.resources.reservations.memory_bytes = 256 << 20
    spec.placement.constraints.append("node.labels.zone==east")
    full = info("full", labels={"zone": "east"})
    full.add_spec("other", spec)
    infos = [info("east", labels={"zone": "east"}), full, info("west", labels={"zone": "west"}),
             info("paused", pb.NodeSpec.PAUSE, labels={"zone": "east"}), info("down", ready=False, labels={"zone": "east"})]  # fmt: skip
    assert room(spec, "svc", infos, limit=10) == {"east": 4, "full": 3}
    spec.placement.max_replicas_per_node = 2
    assert room(spec, "svc", infos, limit=10) == {"east": 2, "full": 2}
    spec.ports.add(target_port=80, published_port=8080, publish_mode=pb.PortConfig.HOST)
    assert room(spec, "svc", infos, limit=10) == {"east": 1, "full": 1}
    assert room(spec, "svc", infos, limit=0) == {"east": 0, "full": 0}


def test_the_manager_refuses_rebalance_outside_replicated_mode():
    import pytest

    from shoal import spec as specs

    s = pb.ServiceSpec(name="g", mode=pb.ServiceSpec.GLOBAL, rebalance=True)
    s.container.image = "nginx"
    with pytest.raises(specs.SpecError, match="rebalance can only be used with replicated mode"):
        specs.validate(s)
    s.mode = pb.ServiceSpec.REPLICATED
    specs.validate(s)


def test_after_a_scale_down_the_rebalancer_evens_out_what_the_highest_slots_left():
    svc = service(6, parallelism=0)
    tasks = placed(svc, {"a": 2, "b": 2, "c": 2})  # slots 1-2 on a, 3-4 on b, 5-6 on c
    svc.spec.replicas = 3
    acts = replicated.reconcile(svc, tasks, lambda _n: True, NOW)
    assert {t.task.slot for t in tasks if acts.set_desired.get(t.id) == pb.REMOVE} == {4, 5, 6}
    left = [t for t in tasks if t.task.slot <= 3]  # a: 1, 2; b: 3
    moved = rebalance.moves(svc, left, nodes("a", "b", "c"))
    assert [(t.task.node_id, t.task.slot) for t in moved] == [("a", 2)]  # a -> c: 1/1/1
