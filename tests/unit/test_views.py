"""The shared task and node views: a task's effective state, and what a node already carries."""

from __future__ import annotations

from shoal.proto import types_pb2 as pb
from shoal.views import NodeInfo, TaskView, host_ports


def _node(availability: int = pb.NodeSpec.ACTIVE) -> pb.Node:
    n = pb.Node(id="n1")
    n.spec.availability = availability
    n.description.nano_cpus = 4 * 10**9
    n.description.memory_bytes = 8 << 30
    return n


def _spec(cpus: int = 0, mem: int = 0, ports: list[tuple[int, int, int]] = ()) -> pb.ServiceSpec:
    s = pb.ServiceSpec(name="web")
    s.resources.reservations.nano_cpus = cpus
    s.resources.reservations.memory_bytes = mem
    for published, protocol, mode in ports:
        s.ports.add(target_port=80, published_port=published, protocol=protocol, publish_mode=mode)
    return s


def test_task_view_reads_the_status_it_was_given_not_the_tasks_own():
    t = pb.Task(id="t1")
    t.status.state = pb.ASSIGNED
    t.meta.created_at_ns = 42
    v = TaskView(t, pb.TaskStatus(state=pb.FAILED))
    assert (v.id, v.state, v.terminal, v.created) == ("t1", pb.FAILED, True, 42)
    assert not TaskView(t, t.status).terminal


def test_only_host_mode_published_ports_bind_on_the_node():
    spec = _spec(
        ports=[
            (8080, pb.PortConfig.TCP, pb.PortConfig.HOST),
            (53, pb.PortConfig.UDP, pb.PortConfig.HOST),
            (9090, pb.PortConfig.TCP, pb.PortConfig.INGRESS),
            (0, pb.PortConfig.TCP, pb.PortConfig.HOST),
        ]
    )
    assert host_ports(spec) == {(8080, pb.PortConfig.TCP), (53, pb.PortConfig.UDP)}


def test_a_node_is_active_only_when_ready_and_not_drained_or_paused():
    assert NodeInfo(_node(), ready=True).active
    assert not NodeInfo(_node(), ready=False).active
    assert not NodeInfo(_node(pb.NodeSpec.DRAIN), ready=True).active
    assert not NodeInfo(_node(pb.NodeSpec.PAUSE), ready=True).active


def test_adding_tasks_counts_them_and_their_reservations():
    info = NodeInfo(_node(), ready=True)
    assert (info.id, info.cpu_cap, info.mem_cap) == ("n1", 4 * 10**9, 8 << 30)
    spec = _spec(cpus=5 * 10**8, mem=256 << 20, ports=[(8080, pb.PortConfig.TCP, pb.PortConfig.HOST)])
    info.add_spec("svc-a", spec)
    t = pb.Task(service_id="svc-b")
    t.spec.CopyFrom(_spec(cpus=10**9))
    info.add(t)
    assert info.tasks_total == 2
    assert info.tasks_by_service == {"svc-a": 1, "svc-b": 1}
    assert (info.reserved_cpus, info.reserved_memory) == (15 * 10**8, 256 << 20)
    assert info.host_ports == {(8080, pb.PortConfig.TCP)}


def test_precomputed_ports_are_used_as_given():
    info = NodeInfo(_node(), ready=True)
    info.add_spec("svc", _spec(ports=[(8080, pb.PortConfig.TCP, pb.PortConfig.HOST)]), frozenset())
    assert info.host_ports == set(), "the caller's (empty) port set wins"
