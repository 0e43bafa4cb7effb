"""The lab engine on plain data and this process: command lines, process identity, fault guards,
`lab ls` rows and the lab asking its managers (over a real gRPC unix socket) which nodes are Ready."""

from __future__ import annotations

import ipaddress
import json
import os
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner

from shoal.cli.main import main
from shoal.lab import cluster, faults, lifecycle, procs, state
from shoal.lab.state import Lab, LabError, Proc
from shoal.proto import control_pb2, control_pb2_grpc, types_pb2

NET = ipaddress.ip_network


def make_lab(tmp_path: Path, managers: int = 1, workers: int = 2, run_tasks: bool = False) -> Lab:
    return state.plan("t", managers, workers, NET("172.30.9.0/24"), tmp_path, run_tasks)


def me() -> Proc:
    """This test process, as the lab records a process it started."""
    start = procs._start_time(os.getpid())
    assert start is not None
    return Proc(os.getpid(), start)


# ---- command lines ---------------------------------------------------------------------------


def test_first_manager_starts_the_cluster_drained_on_its_embedded_etcd(tmp_path: Path):
    lab = make_lab(tmp_path)
    m = lab.managers[0]
    argv = lifecycle.manager_argv(lab, m, first=True)
    i = argv.index("manager")
    assert argv[i + 1 :] == [
        "--data-dir", m.data_dir, "--listen-addr", "172.30.9.2:4242", "--advertise-addr", "172.30.9.2:4242",
        "--socket", m.socket, "--hostname", "manager1", "--direct-routing", "--availability", "drain",
    ]  # fmt: skip


def test_other_managers_join_the_first_through_the_etcd_cluster(tmp_path: Path):
    lab = make_lab(tmp_path, managers=3, run_tasks=True)
    lab.manager_token = "SHOAL-1-m"
    argv = lifecycle.manager_argv(lab, lab.managers[1], first=False)
    assert "--availability" not in argv, "managers run tasks when asked to"
    assert argv[argv.index("--etcd") + 1] == "https://172.30.9.2:2379,https://172.30.9.3:2379,https://172.30.9.4:2379"
    assert argv[argv.index("--join") + 1] == "172.30.9.2:4242"
    assert "--token" not in argv and "SHOAL-1-m" not in argv  # argv is world-readable in /proc
    assert lifecycle.daemon_env(lab, lab.managers[1], first=False) == {"SHOAL_TOKEN": "SHOAL-1-m"}
    assert argv[argv.index("--election-ttl") + 1] == "1", "the lab's etcd has LAN timing: 1 s leases"
    first = lifecycle.manager_argv(lab, lab.managers[0], first=True)
    assert "--join" not in first
    assert lifecycle.daemon_env(lab, lab.managers[0], first=True) == {}


def test_a_manager_restarted_before_the_token_is_known_does_not_join(tmp_path: Path):
    lab = make_lab(tmp_path, managers=3)
    assert "--join" not in lifecycle.manager_argv(lab, lab.managers[2], first=False)


def test_workers_join_every_manager(tmp_path: Path):
    lab = make_lab(tmp_path, managers=3, workers=1)
    lab.worker_token = "SHOAL-1-w"
    argv = lifecycle.worker_argv(lab, lab.workers[0])
    i = argv.index("worker")
    assert argv[i + 1 :] == [
        "--join", "172.30.9.2:4242,172.30.9.3:4242,172.30.9.4:4242",
        "--data-dir", lab.workers[0].data_dir, "--hostname", "worker1", "--direct-routing",
    ]  # fmt: skip
    assert lifecycle.daemon_env(lab, lab.workers[0], first=False) == {"SHOAL_TOKEN": "SHOAL-1-w"}


def test_the_lab_state_file_that_holds_the_tokens_is_private(tmp_path: Path):
    lab = make_lab(tmp_path)
    lab.worker_token = "SHOAL-1-w"
    Path(lab.dir).mkdir(parents=True)
    lab.save()
    lab.save()  # replaced, still private
    assert (lab.state_file.stat().st_mode & 0o777) == 0o600
    assert json.loads(lab.state_file.read_text())["worker_token"] == "SHOAL-1-w"


def test_etcd_members_form_one_cluster_on_their_lab_addresses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(procs.shutil, "which", lambda name: "/usr/bin/etcd")
    lab = make_lab(tmp_path, managers=3)
    argv = procs.etcd_argv(lab, lab.managers[1])
    assert argv[0] == "/usr/bin/etcd"
    opt = dict(zip(argv[1::2], argv[2::2], strict=False))
    assert opt["--name"] == "manager2"
    assert opt["--initial-cluster"] == lab.initial_cluster()
    assert lab.initial_cluster().split(",")[1] == "manager2=https://172.30.9.3:2380"
    assert opt["--listen-client-urls"] == "https://172.30.9.3:2379,https://127.0.0.1:2379"
    assert opt["--initial-cluster-token"] == "shoal-lab-t"
    assert (opt["--heartbeat-interval"], opt["--election-timeout"]) == ("25", "250"), "LAN timing: a lost raft leader replaced in < 0.5 s"


def test_etcd_lan_timing_stretches_on_a_slow_machine(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SHOAL_ETCD_TIME_SCALE", "8")  # the cgroup-v2 VM under software emulation
    assert procs.etcd_lan_timing() == ["--heartbeat-interval", "200", "--election-timeout", "2000"]


def test_a_missing_etcd_binary_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(procs.shutil, "which", lambda name: None)
    with pytest.raises(LabError, match="make setup"):
        procs.etcd_binary()


def test_interface_names_fit_the_kernels_limit(tmp_path: Path):
    lab = state.plan("a-rather-long-lab-name_0123456", 5, 20, NET("172.30.0.0/24"), tmp_path)
    names = [lab.bridge] + [n.veth for n in lab.nodes]
    assert all(len(x) <= 15 for x in names)
    assert len(set(names)) == len(names)
    assert state.prefixlen(lab) == 24


# ---- processes -------------------------------------------------------------------------------


def test_a_process_is_known_by_pid_and_start_time():
    assert procs.alive(me())
    assert not procs.alive(Proc(os.getpid(), me().start + 1)), "a recycled pid is not our process"
    assert not procs.alive(None)
    assert not procs.alive(Proc(2**22 + 1, 0))


def test_signalling_a_process_that_is_gone_is_a_no_op():
    assert procs.signal_proc(None, 0) is False
    assert procs.signal_proc(Proc(os.getpid(), me().start + 1), 9) is False
    assert procs.signal_proc(me(), 0) is True
    assert procs.wait_gone([None, Proc(2**22 + 1, 0)], 0.1)
    assert not procs.wait_gone([me()], 0.05)


def test_wait_until_returns_the_first_truthy_value_or_names_what_was_awaited():
    values = iter([None, 0, "ready"])
    assert procs.wait_until(lambda: next(values), 5, "x") == "ready"
    with pytest.raises(LabError, match=r"worker1 Ready not reached within 0.05s; see the logs"):
        procs.wait_until(lambda: False, 0.05, "worker1 Ready", "see the logs")


def test_log_tail_joins_the_last_lines(tmp_path: Path):
    lab = make_lab(tmp_path)
    node = lab.workers[0]
    assert procs.log_tail(node, "daemon") == ""
    Path(node.data_dir).mkdir(parents=True)
    (Path(node.data_dir) / "daemon.log").write_text("".join(f"line {i}\n" for i in range(10)))
    assert procs.log_tail(node, "daemon", lines=3) == "line 7 | line 8 | line 9"


def test_this_process_command_line_is_read_from_proc():
    assert "pytest" in " ".join(procs.cmdline(os.getpid()))
    assert procs.cmdline(2**22 + 1) == []
    assert procs.children(2**22 + 1) == []


def test_no_embedded_etcd_without_a_running_daemon(tmp_path: Path):
    assert procs.embedded_etcd(make_lab(tmp_path).managers[0]) is None


def test_spawning_needs_the_hosts_namespace(tmp_path: Path):
    node = make_lab(tmp_path).workers[0]
    with pytest.raises(LabError, match="has no network namespace"):
        procs.spawn(node, ["true"], "daemon")


# ---- faults and status -------------------------------------------------------------------------


def test_status_of_a_host_never_started(tmp_path: Path):
    lab = make_lab(tmp_path, managers=3, workers=1)
    row = faults.status(lab, lab.workers[0])
    assert row == {
        "Lab": "t", "Node": "worker1", "Role": "worker", "Address": "172.30.9.5", "Daemon": "-", "Etcd": "-",
        "Network": "connected", "Processes": "0",
    }  # fmt: skip
    assert faults.status(lab, lab.managers[0])["Etcd"] == "stopped"
    lab.managers[0].daemon = Proc(2**22 + 1, 0)
    lab.managers[0].partitioned = True
    row = faults.status(lab, lab.managers[0])
    assert (row["Daemon"], row["Network"]) == ("stopped", "partitioned")


def test_status_shows_a_running_daemon(tmp_path: Path):
    lab = make_lab(tmp_path)
    lab.managers[0].daemon = me()
    row = faults.status(lab, lab.managers[0])
    assert row["Daemon"] == "running"
    assert row["Etcd"] in ("embedded", "stopped")  # this process may or may not have an etcd child


def test_faults_on_a_host_that_does_not_run_say_so(tmp_path: Path):
    lab = make_lab(tmp_path)
    w = lab.workers[0]
    assert faults.kill(lab, w) == "worker1 is not running"
    assert faults.kill_daemon(lab, w) == "the daemon of worker1 is not running"
    assert faults.stop(lab, w) == "worker1 is not running"
    assert faults.kill_etcd(lab, lab.managers[0]) == "the embedded etcd of manager1 is not running"


def test_etcd_faults_only_apply_to_managers(tmp_path: Path):
    lab = make_lab(tmp_path, managers=3)
    with pytest.raises(LabError, match="worker1 is a worker: etcd runs on manager hosts"):
        faults.kill_etcd(lab, lab.workers[0])
    with pytest.raises(LabError, match="etcd runs on manager hosts"):
        faults.start_etcd(lab, lab.workers[0])
    assert faults.kill_etcd(lab, lab.managers[1]) == "the etcd member on manager2 is not running"
    lab.managers[1].etcd = me()
    with pytest.raises(LabError, match="already running"):
        faults.start_etcd(lab, lab.managers[1])


def test_an_embedded_etcd_is_restarted_with_its_manager(tmp_path: Path):
    lab = make_lab(tmp_path)
    with pytest.raises(LabError, match=r"lab stop manager1.*lab start manager1"):
        faults.start_etcd(lab, lab.managers[0])


def test_starting_a_running_host_is_refused(tmp_path: Path):
    lab = make_lab(tmp_path)
    lab.workers[0].daemon = me()
    with pytest.raises(LabError, match="worker1 is already running"):
        faults.start(lab, lab.workers[0])


# ---- the lab's cluster --------------------------------------------------------------------------


class _Control(control_pb2_grpc.ControlServicer):
    def __init__(self, nodes: list[types_pb2.Node]) -> None:
        self.nodes = nodes

    def ListNodes(self, request, context):  # noqa: N802 - the gRPC method name
        return control_pb2.ListNodesResponse(nodes=self.nodes)


def _node(hostname: str, ready: bool, manager: str = "") -> types_pb2.Node:
    """A node as ListNodes shows it; ``manager``: "leader", "reachable" or "unreachable" for a manager."""
    n = types_pb2.Node(id=hostname + "-id")
    n.description.hostname = hostname
    n.status.state = types_pb2.NodeStatus.READY if ready else types_pb2.NodeStatus.DOWN
    if manager:
        n.spec.role = types_pb2.NodeSpec.MANAGER
        n.manager_status.leader = manager == "leader"
        n.manager_status.reachability = "unreachable" if manager == "unreachable" else "reachable"
    return n


@pytest.fixture
def manager_socket(tmp_path: Path):
    sock = str(tmp_path / "m.sock")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    control_pb2_grpc.add_ControlServicer_to_server(_Control([_node("manager1", True, "leader"), _node("manager2", True, "unreachable"),
                                                         _node("manager3", True, "reachable"), _node("worker1", False)]), server)
    server.add_insecure_port(f"unix://{sock}")
    server.start()
    yield sock
    server.stop(None)


def test_node_states_come_from_a_live_manager(tmp_path: Path, manager_socket: str):
    lab = make_lab(tmp_path, managers=3)
    assert cluster.node_states(lab) is None, "no manager daemon runs"
    lab.managers[1].daemon, lab.managers[1].socket = me(), manager_socket
    # manager2's agent is Ready but its manager has not announced itself yet: `lab up` must wait for it
    assert cluster.node_states(lab) == {"manager1": "Ready", "manager2": "Unreachable", "manager3": "Ready", "worker1": "Down"}
    assert [n.id for n in cluster.list_nodes(manager_socket)] == ["manager1-id", "manager2-id", "manager3-id", "worker1-id"]


def test_a_manager_that_does_not_answer_is_skipped(tmp_path: Path):
    lab = make_lab(tmp_path)
    lab.managers[0].daemon = me()
    Path(lab.managers[0].socket).parent.mkdir(parents=True, exist_ok=True)
    Path(lab.managers[0].socket).write_text("")  # exists, but nobody listens
    assert cluster.node_states(lab) is None


def test_the_lab_host_is_the_first_manager_whose_daemon_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SHOAL_LAB_DIR", str(tmp_path))
    lab = make_lab(tmp_path, managers=3)
    Path(lab.dir).mkdir(parents=True)
    lab.save()
    assert cluster.host_for("t") == f"unix://{lab.managers[0].socket}"
    lab.managers[2].daemon = me()
    lab.save()
    assert cluster.host_for("t") == f"unix://{lab.managers[2].socket}"


# ---- the lab commands over saved state ------------------------------------------------------------


def test_lab_ls_lists_every_host_of_every_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SHOAL_LAB_DIR", str(tmp_path))
    lab = make_lab(tmp_path, workers=1)
    Path(lab.dir).mkdir(parents=True)
    lab.save()
    r = CliRunner().invoke(main, ["lab", "ls", "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [(x["Node"], x["Role"], x["Address"]) for x in rows] == [("manager1", "manager", "172.30.9.2"), ("worker1", "worker", "172.30.9.3")]
    table = CliRunner().invoke(main, ["lab", "ls"]).output.splitlines()
    assert table[0].split() == ["LAB", "NODE", "ROLE", "ADDRESS", "DAEMON", "ETCD", "NETWORK", "PROCESSES"]
    assert len(table) == 3


def test_global_lab_option_naming_no_lab_is_one_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SHOAL_LAB_DIR", str(tmp_path))
    r = CliRunner().invoke(main, ["--lab", "nope", "node", "ls"])
    assert r.exit_code == 1
    assert r.output.strip() == "Error: no lab named 'nope' (see `shoal lab ls`)"


def test_lab_commands_name_an_unknown_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if os.geteuid() != 0:
        pytest.skip(reason="lab fault commands need root before they read the lab")
    monkeypatch.setenv("SHOAL_LAB_DIR", str(tmp_path))
    lab = make_lab(tmp_path, workers=1)
    Path(lab.dir).mkdir(parents=True)
    lab.save()
    r = CliRunner().invoke(main, ["lab", "heal", "worker7", "--name", "t"])
    assert r.exit_code == 1
    assert "lab 't' has no node 'worker7' (nodes: manager1, worker1)" in r.output


# ---- locks ---------------------------------------------------------------------------------------


def test_the_lab_lock_leaves_nothing_behind_for_a_lab_that_does_not_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SHOAL_LAB_DIR", str(tmp_path))
    with state.locked("ghost"):
        assert (tmp_path / ".ghost.lock").exists()
    assert not (tmp_path / ".ghost.lock").exists()


def test_the_lab_lock_stays_while_the_lab_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SHOAL_LAB_DIR", str(tmp_path))
    (tmp_path / "real").mkdir()
    with state.locked("real"):
        pass
    assert (tmp_path / ".real.lock").exists()


def test_the_lab_lock_refuses_a_bad_name_before_creating_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SHOAL_LAB_DIR", str(tmp_path / "labs"))
    with pytest.raises(LabError, match="invalid lab name"), state.locked("../etc"):
        pass
    assert list((tmp_path / "labs").glob(".*")) == []


def test_a_corrupt_lab_file_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SHOAL_LAB_DIR", str(tmp_path))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "lab.json").write_text("{not json")
    with pytest.raises(LabError, match=r"unreadable lab state .*lab.json"):
        state.load("bad")
    assert state.all_labs() == [], "an unreadable lab is left out of the list, not a crash"
