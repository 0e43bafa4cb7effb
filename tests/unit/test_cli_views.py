"""The docker-shaped rows of `svc ls`, `svc ps` and `node ls`, and the table layout itself."""

from __future__ import annotations

import pytest

from shoal.cli.node import node_record, node_row
from shoal.cli.output import format_table, human_duration, quote_error
from shoal.cli.service_views import (
    pretty_service,
    replicas_text,
    service_record,
    service_row,
    task_records,
    task_row,
)
from shoal.proto import control_pb2, types_pb2

NOW = 1_700_000_000.0
S = types_pb2.ServiceSpec
SID = "abcdefghijklmnopqrstuvwxy"


def ns(seconds_ago: float) -> int:
    return int((NOW - seconds_ago) * 1e9)


def summary(running: int, desired: int, completed: int = 0) -> control_pb2.ServiceSummary:
    return control_pb2.ServiceSummary(running=running, desired=desired, completed=completed)


def test_format_table_matches_docker_tabwriter() -> None:
    out = format_table(("ID", "NAME", "MODE"), [("abcdefghijkl", "web", "replicated")])
    assert out.splitlines() == ["ID             NAME      MODE", "abcdefghijkl   web       replicated"]


def test_service_ls_row() -> None:
    spec = S(name="web", replicas=3, container=types_pb2.ContainerSpec(image="nginx:1.25"))
    spec.ports.add(published_port=8080, target_port=80)
    spec.ports.add(published_port=53, target_port=53, protocol=types_pb2.PortConfig.UDP)
    spec.ports.add(published_port=9000, target_port=9000, publish_mode=types_pb2.PortConfig.HOST)
    rec = service_record(types_pb2.Service(id=SID, spec=spec), summary(2, 3))
    assert rec == {
        "ID": SID,
        "Name": "web",
        "Mode": "replicated",
        "Replicas": "2/3",
        "Image": "nginx:1.25",
        "Ports": "*:8080->80/tcp, *:53->53/udp",
    }
    assert service_row(rec)[0] == "abcdefghijkl"


@pytest.mark.parametrize(
    ("spec", "summ", "text"),
    [
        (S(mode=S.GLOBAL), summary(4, 5), "4/5"),
        (S(mode=S.REPLICATED, replicas=2, placement=types_pb2.Placement(max_replicas_per_node=1)), summary(2, 2), "2/2 (max 1 per node)"),
        (S(mode=S.REPLICATED_JOB, replicas=5), summary(1, 2, 3), "1/2 (3/5 completed)"),
        (S(mode=S.GLOBAL_JOB), summary(0, 3, 3), "0/3 (3 completed)"),
        (S(mode=S.REPLICATED, replicas=2), None, "0/0"),
    ],
)
def test_replicas_column(spec: types_pb2.ServiceSpec, summ: control_pb2.ServiceSummary | None, text: str) -> None:
    assert replicas_text(spec, summ) == text


def test_mode_names() -> None:
    modes = [service_record(types_pb2.Service(id=SID, spec=S(mode=m)), None)["Mode"] for m in range(4)]
    assert modes == ["replicated", "global", "replicated job", "global job"]


def task(
    tid: str,
    slot: int,
    state: int,
    age: float,
    desired: int = types_pb2.RUNNING,
    err: str = "",
    node: str = "n1",
    created: float | None = None,
) -> types_pb2.Task:
    return types_pb2.Task(
        id=tid,
        service_id=SID,
        service_name="web",
        slot=slot,
        node_id=node,
        spec=S(container=types_pb2.ContainerSpec(image="nginx")),
        desired_state=desired,
        status=types_pb2.TaskStatus(state=state, timestamp_ns=ns(age), err=err),
        meta=types_pb2.Meta(created_at_ns=ns(age if created is None else created)),
    )


def test_ps_rows_names_history_states_and_errors() -> None:
    tasks = [
        task("t2old0000000000000000000", 2, types_pb2.FAILED, 600, types_pb2.SHUTDOWN, "task: non-zero exit (3)"),
        task("t1000000000000000000000", 1, types_pb2.RUNNING, 5),
        task("t2new0000000000000000000", 2, types_pb2.RUNNING, 90),
        task("t10pending00000000000000", 10, types_pb2.PENDING, 0.2, node=""),
    ]
    nodes = {"n1": "host-one"}
    rows = [task_row(r) for r in task_records(tasks, nodes, now=NOW)]
    assert rows == [
        ["t10000000000", "web.1", "nginx", "host-one", "Running", "Running 5 seconds ago", "", ""],
        ["t2new0000000", "web.2", "nginx", "host-one", "Running", "Running about a minute ago", "", ""],
        ["t2old0000000", " \\_ web.2", "nginx", "host-one", "Shutdown", "Failed 10 minutes ago", '"task: non-zero exit (3)"', ""],
        ["t10pending00", "web.10", "nginx", "", "Running", "Pending less than a second ago", "", ""],
    ]


def test_ps_no_trunc_and_global_names() -> None:
    long_err = "starting container failed: no such image: registry.example/app:1"
    t = task("gtask000000000000000000000", 0, types_pb2.REJECTED, 3, err=long_err, node="nodeid00000000000000000xy")
    (rec,) = task_records([t], {}, now=NOW)
    assert rec["Name"] == "web.nodeid00000000000000000xy"
    assert task_row(rec)[6] == '"starting container failed: no…"'
    assert rec["Error"] == long_err
    (rec,) = task_records([t], {}, no_trunc=True, now=NOW)
    row = task_row(rec, no_trunc=True)
    assert row[0] == t.id and row[1] == f"web.nodeid00000000000000000xy.{t.id}"
    assert row[6] == f'"{long_err}"'


def test_quote_error() -> None:
    assert quote_error("") == ""
    assert quote_error("x" * 30) == '"' + "x" * 30 + '"'
    assert quote_error("x" * 31) == '"' + "x" * 29 + '…"'


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "Less than a second"),
        (1, "1 second"),
        (5, "5 seconds"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (600, "10 minutes"),
        (3600, "About an hour"),
        (5 * 3600, "5 hours"),
        (3 * 86400, "3 days"),
        (20 * 86400, "2 weeks"),
        (90 * 86400, "3 months"),
        (800 * 86400, "2 years"),
    ],
)
def test_human_duration_like_go_units(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def node(nid: str, host: str, role: int, state: int, avail: int, leader: bool = False, reach: str = "") -> types_pb2.Node:
    n = types_pb2.Node(
        id=nid,
        spec=types_pb2.NodeSpec(role=role, availability=avail),
        description=types_pb2.NodeDescription(hostname=host),
        status=types_pb2.NodeStatus(state=state),
    )
    if role == types_pb2.NodeSpec.MANAGER:
        n.manager_status.CopyFrom(types_pb2.ManagerStatus(leader=leader, reachability=reach))
    return n


def test_node_rows() -> None:
    NS, NST = types_pb2.NodeSpec, types_pb2.NodeStatus
    leader = node("m" * 25, "mgr1", NS.MANAGER, NST.READY, NS.ACTIVE, leader=True)
    leader.description.engine_labels["shoal.version"] = "0.1.0"
    rows = [
        node_row(node_record(n))
        for n in (
            leader,
            node("r" * 25, "mgr2", NS.MANAGER, NST.DOWN, NS.DRAIN, reach="unreachable"),
            node("w" * 25, "w1", NS.WORKER, NST.UNKNOWN, NS.PAUSE),
        )
    ]
    assert rows == [
        ["m" * 12, "mgr1", "Ready", "Active", "Leader", "0.1.0"],
        ["r" * 12, "mgr2", "Down", "Drain", "Unreachable", ""],
        ["w" * 12, "w1", "Unknown", "Pause", "", ""],
    ]


def test_pretty_inspect_summary() -> None:
    spec = S(name="web", replicas=2, container=types_pb2.ContainerSpec(image="nginx", args=["-g", "daemon off;"]))
    spec.resources.limits.memory_bytes = 512 << 20
    spec.resources.limits.nano_cpus = 500_000_000
    spec.placement.constraints.append("node.role==worker")
    spec.ports.add(published_port=8080, target_port=80)
    text = pretty_service(types_pb2.Service(id=SID, spec=spec))
    for needle in (
        f"ID:             {SID}",
        "Name:           web",
        "Service Mode:   Replicated",
        " Replicas:      2",
        " Constraints:   [node.role==worker]",
        " Image:         nginx",
        " Args:          -g daemon off;",
        "  Memory:       512MiB",
        "  CPU:          0.5",
        " PublishedPort = 8080",
        "  TargetPort = 80",
    ):
        assert needle in text.splitlines(), needle


def test_ps_ports_are_a_tasks_host_mode_ports_once_it_ran_as_dockers() -> None:
    t = task("thost000000000000000000000", 1, types_pb2.RUNNING, 5)
    t.spec.ports.add(published_port=8080, target_port=80, publish_mode=types_pb2.PortConfig.HOST)
    t.spec.ports.add(published_port=5353, target_port=53, protocol=types_pb2.PortConfig.UDP, publish_mode=types_pb2.PortConfig.HOST)
    t.spec.ports.add(published_port=9090, target_port=90)  # ingress: the service's, not the task's
    (rec,) = task_records([t], {}, now=NOW)
    assert rec["Ports"] == "*:8080->80/tcp,*:5353->53/udp" and task_row(rec)[7] == rec["Ports"]
    t.status.state = types_pb2.PREPARING
    (rec,) = task_records([t], {}, now=NOW)
    assert rec["Ports"] == "", "not bound before its container ran"
