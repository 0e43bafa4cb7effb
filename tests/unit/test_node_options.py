"""`shoal manager` / `shoal worker`: flags become node options, bad combinations fail before anything
is written, and the manager's banner carries what other nodes need to join."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from shoal.cli import daemons
from shoal.cli.main import main
from shoal.node import daemon
from shoal.node.options import (
    AVAILABILITY,
    ManagerOptions,
    ManagerReady,
    NodeError,
    WorkerOptions,
    split_list,
)
from shoal.proto import types_pb2 as pb


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The options the daemon commands hand to shoal.node, instead of running a node."""
    seen: list[object] = []
    monkeypatch.setattr(daemon, "run_manager", lambda opts, on_ready: seen.append(opts))
    monkeypatch.setattr(daemon, "run_worker", lambda opts: seen.append(opts))
    return seen


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_split_list_drops_empty_entries():
    assert split_list("") == []
    assert split_list("a:1") == ["a:1"]
    assert split_list("a:1,,b:2,") == ["a:1", "b:2"]


def test_availability_words_map_onto_the_node_spec():
    assert AVAILABILITY == {"active": pb.NodeSpec.ACTIVE, "pause": pb.NodeSpec.PAUSE, "drain": pb.NodeSpec.DRAIN}


def test_manager_defaults(captured: list[object], tmp_path: Path):
    r = invoke("manager", "--data-dir", str(tmp_path))
    assert r.exit_code == 0, r.output
    (opts,) = captured
    assert isinstance(opts, ManagerOptions)
    assert opts.data_dir == tmp_path
    assert (opts.listen_addr, opts.socket_path, opts.availability) == ("127.0.0.1:4242", "/run/shoal/manager.sock", "active")
    assert (opts.etcd, opts.join, opts.token, opts.init) == ([], [], "", False)
    assert (opts.heartbeat_period, opts.history_limit, opts.log_level, opts.election_ttl) == (1.0, 5, "info", 2.0)


def test_manager_flags_reach_the_options(captured: list[object], tmp_path: Path):
    r = invoke(
        "manager", "--data-dir", str(tmp_path), "--listen-addr", "0.0.0.0:5000", "--advertise-addr", "10.0.0.1:5000",
        "--socket", "/tmp/m.sock", "--etcd", "http://a:2379,http://b:2379", "--availability", "drain",
        "--heartbeat-period", "0.5", "--task-history-limit", "2", "--join", "10.0.0.2:4242,10.0.0.3:4242",
        "--token", "SHOAL-1-x-y", "--hostname", "m1", "--metrics-addr", "127.0.0.1:9100", "--log-level", "debug",
        "--cgroup-parent", "shoal-test", "--election-ttl", "1",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    (opts,) = captured
    assert opts == ManagerOptions(election_ttl=1.0,
        data_dir=tmp_path, listen_addr="0.0.0.0:5000", advertise_addr="10.0.0.1:5000", socket_path="/tmp/m.sock",
        etcd=["http://a:2379", "http://b:2379"], availability="drain", heartbeat_period=0.5, history_limit=2,
        join=["10.0.0.2:4242", "10.0.0.3:4242"], token="SHOAL-1-x-y", hostname="m1", metrics_addr="127.0.0.1:9100",
        log_level="debug", cgroup_parent="shoal-test",
    )  # fmt: skip


def test_worker_flags_reach_the_options(captured: list[object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SHOAL_TOKEN", "SHOAL-1-from-env")
    r = invoke("worker", "--join", "m1:4242,m2:4242", "--data-dir", str(tmp_path), "--availability", "pause", "--manager-socket", "/tmp/w.sock")
    assert r.exit_code == 0, r.output
    (opts,) = captured
    assert isinstance(opts, WorkerOptions)
    assert opts.join == ["m1:4242", "m2:4242"] and opts.token == "SHOAL-1-from-env"
    assert (opts.availability, opts.manager_socket, opts.manager_listen_addr) == ("pause", "/tmp/w.sock", "")


def test_worker_without_join_is_a_usage_error(captured: list[object]):
    r = invoke("worker", "--token", "t")
    assert r.exit_code == 2 and "--join" in r.output
    assert captured == []


def test_unknown_availability_is_a_usage_error(captured: list[object]):
    r = invoke("manager", "--availability", "sleepy")
    assert r.exit_code == 2 and "sleepy" in r.output
    assert captured == []


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (ManagerOptions(data_dir=Path("x"), init=True, join=["m:1"], token="t"), "--init creates a new cluster"),
        (ManagerOptions(data_dir=Path("x"), join=["m:1"]), "--join needs the manager join token"),
        (ManagerOptions(data_dir=Path("x"), availability="sleepy"), "--availability 'sleepy'"),
        (ManagerOptions(data_dir=Path("x"), election_ttl=0.5), "--election-ttl 0.5: etcd leases are whole seconds, at least 1"),
        (ManagerOptions(data_dir=Path("x"), election_ttl=1.5), "--election-ttl 1.5: etcd leases are whole seconds"),
        (WorkerOptions(data_dir=Path("x"), join=[], token="t"), "--join needs at least one manager address"),
        (WorkerOptions(data_dir=Path("x"), join=["m:1"], token=""), "--token is needed"),
    ],
)
def test_contradictions_are_one_clear_error(opts, message: str):
    with pytest.raises(NodeError, match=message):
        opts.check()


def test_consistent_options_pass_the_check():
    ManagerOptions(data_dir=Path("x")).check()
    ManagerOptions(data_dir=Path("x"), init=True).check()
    ManagerOptions(data_dir=Path("x"), join=["m:1"], token="t", availability="drain").check()
    WorkerOptions(data_dir=Path("x"), join=["m:1"], token="t").check()


def test_a_refused_manager_writes_nothing_and_exits_1(tmp_path: Path):
    data = tmp_path / "data"
    r = CliRunner().invoke(main, ["manager", "--data-dir", str(data), "--init", "--join", "m:4242", "--token", "t"])
    assert r.exit_code == 1
    assert r.output.strip() == "Error: --init creates a new cluster; --join joins an existing one: use one of them"
    assert not data.exists(), "nothing written for a refused command line"


def test_a_node_error_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    def fail(opts: object) -> None:
        raise NodeError("cannot reach any manager to join: m:4242: refused")

    monkeypatch.setattr(daemon, "run_worker", fail)
    r = CliRunner().invoke(main, ["worker", "--join", "m:4242", "--token", "t", "--data-dir", str(tmp_path)])
    assert r.exit_code == 1
    assert r.output.strip() == "Error: cannot reach any manager to join: m:4242: refused"


def test_node_id_is_created_once_and_kept(tmp_path: Path):
    first = daemon.node_id(tmp_path)
    assert len(first) >= 12
    assert daemon.node_id(tmp_path) == first
    assert json.loads((tmp_path / "agent" / "node.json").read_text()) == {"node_id": first}


def test_ready_banner_tells_how_to_join_and_where_the_admin_certificate_is():
    r = ManagerReady(
        node_id="abcdefghijklmnop", socket_path="/run/shoal/m.sock", advertise="10.0.0.1:4242",
        worker_token="SHOAL-1-w", manager_token="SHOAL-1-m", certs_dir=Path("/d/certificates"),
    )  # fmt: skip
    text = daemons.ready_message(r)
    assert text.startswith("Manager abcdefghijkl is ready; the CLI socket is /run/shoal/m.sock.")
    assert "shoal worker --join 10.0.0.1:4242 --token SHOAL-1-w --data-dir ./data/worker" in text
    assert "To add a manager, use the token SHOAL-1-m" in text
    assert "/d/certificates/admin.crt" in text


def test_a_restart_of_an_existing_cluster_does_not_print_the_tokens():
    r = ManagerReady("n" * 16, "/s.sock", "10.0.0.1:4242", "SHOAL-1-abc-def", "SHOAL-1-abc-ghi", Path("/c"), created=False)
    text = daemons.ready_message(r)
    assert "SHOAL-1" not in text
    assert "shoal join-token worker|manager" in text and "/c/admin.crt" in text


def test_the_lab_reads_the_tokens_from_the_banner_the_cli_prints():
    from shoal.lab import lifecycle

    r = ManagerReady("n" * 16, "/s.sock", "172.30.0.2:4242", "SHOAL-1-abc-def", "SHOAL-1-abc-ghi", Path("/c"))
    text = daemons.ready_message(r)
    assert lifecycle.WORKER_TOKEN_RE.search(text).group(1) == "SHOAL-1-abc-def"
    assert lifecycle.MANAGER_TOKEN_RE.search(text).group(1) == "SHOAL-1-abc-ghi"


def test_the_cli_loads_no_manager_or_worker_code_until_a_daemon_runs():
    import subprocess

    code = "import sys; import shoal.cli.main; print(sorted(m for m in sys.modules if m.startswith(('shoal.manager', 'shoal.worker'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
