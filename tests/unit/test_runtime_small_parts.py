"""Small pieces of the runtime's two processes: the launcher's JSON log lines, exec's output tail,
and the launcher's request table on a fake supervisor."""

from __future__ import annotations

import json
import socket
from types import SimpleNamespace
from typing import Any

import pytest

from shoal.runtime import ContainerConfig, ContainerError, protocol
from shoal.runtime.client.exec import OutputTail
from shoal.runtime.launcher import jsonlog, requests
from shoal.runtime.spec import validate


def test_jsonlog_writes_structlog_shaped_lines(capfd: pytest.CaptureFixture[str]) -> None:
    jsonlog.setup("info")
    log = jsonlog.get("shoal.runtime.launcher")
    log.debug("hidden")
    log.info("started", container="c1", pid=7)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed", op="start")
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines()]
    assert [r["event"] for r in lines] == ["started", "failed"]
    assert lines[0]["container"] == "c1" and lines[0]["pid"] == 7 and lines[0]["level"] == "info"
    assert lines[0]["logger"] == "shoal.runtime.launcher" and lines[0]["timestamp"].endswith("Z")
    assert lines[1]["level"] == "error" and "ValueError: boom" in lines[1]["exception"]
    jsonlog.setup("error")
    log.warning("quiet")
    assert capfd.readouterr().err == ""
    jsonlog.setup("info")


def test_output_tail_keeps_the_last_bytes() -> None:
    tail = OutputTail(cap=10)
    for chunk in (b"0123", b"4567", b"89ab", b"cdef"):
        tail(chunk)
    assert tail.value() == b"6789abcdef"
    assert len(tail.chunks) <= 4
    small = OutputTail(cap=10)
    small(b"hi")
    assert small.value() == b"hi"


class FakeSup:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        spec = validate(ContainerConfig(id="c1", image="host", args=["true"], stop_grace_s=4))
        info = SimpleNamespace(to_dict=lambda: {"id": "c1"})
        self.states = {"c1": SimpleNamespace(status="exited", spec=spec, info=lambda: info)}
        self.cgroups = SimpleNamespace(version=1, stats=lambda cid: {"pids": 1})

    def create(self, spec: Any) -> Any:
        self.calls.append(("create", spec))
        return SimpleNamespace(to_dict=lambda: {"id": spec.id})

    def get(self, cid: str) -> Any:
        if cid not in self.states:
            raise ContainerError(f"no such container: {cid}")
        return self.states[cid]

    def kill(self, cid: str, sig: int, whole: bool) -> None:
        self.calls.append(("kill", (cid, sig, whole)))

    def running_count(self) -> int:
        return 0


def server() -> Any:
    fake = SimpleNamespace(sup=FakeSup(), sessions=set(), waiters={}, had_session=False, terminate_requested=True, linger_s=0.0)
    fake.cgroups = fake.sup.cgroups
    return fake


def test_create_receives_the_clients_spec_as_is() -> None:
    srv = server()
    spec = validate(ContainerConfig(id="c2", image="host", args=["true"], cap_drop=["ALL"]))
    reply = requests.dispatch(srv, None, {"op": "create", "spec": json.loads(json.dumps(spec.to_dict()))})  # type: ignore[arg-type]
    assert reply == protocol.ok(info={"id": "c2"})
    assert srv.sup.calls == [("create", spec)]


def test_session_ops_decide_the_launchers_lifetime() -> None:
    srv = server()
    conn = socket.socket()
    try:
        hello = requests.dispatch(srv, conn, {"op": "hello"})
        assert hello is not None and hello["cgroup_version"] == 1 and conn in srv.sessions
        assert srv.had_session and not srv.terminate_requested
        assert requests.dispatch(srv, conn, {"op": "shutdown"}) == protocol.ok(exiting=True, running=0)
        assert conn not in srv.sessions
        srv.linger_s = 60.0
        requests.dispatch(srv, conn, {"op": "hello"})
        assert requests.dispatch(srv, conn, {"op": "shutdown"}) == protocol.ok(exiting=False, running=0), "a lingering launcher stays: the client does not wait for it"
    finally:
        conn.close()


def test_inspect_wait_kill_stats_and_unknown_ops() -> None:
    srv = server()
    assert requests.dispatch(srv, None, {"op": "inspect", "id": "c1"}) == protocol.ok(info={"id": "c1"}, stop_grace_s=4.0, stop_signal=15)  # type: ignore[arg-type]
    assert requests.dispatch(srv, None, {"op": "wait", "id": "c1"}) == protocol.ok(info={"id": "c1"}), "exited: at once"  # type: ignore[arg-type]
    requests.dispatch(srv, None, {"op": "kill", "id": "c1", "signal": 9, "all": True})  # type: ignore[arg-type]
    assert srv.sup.calls == [("kill", ("c1", 9, True))]
    assert requests.dispatch(srv, None, {"op": "stats", "id": "c1"}) == protocol.ok(stats={"pids": 1})  # type: ignore[arg-type]
    with pytest.raises(ContainerError, match="no such container: nope"):
        requests.dispatch(srv, None, {"op": "stats", "id": "nope"})  # type: ignore[arg-type]
    with pytest.raises(ContainerError, match="unknown operation 'fly'"):
        requests.dispatch(srv, None, {"op": "fly"})  # type: ignore[arg-type]


def test_wait_on_a_running_container_parks_the_connection() -> None:
    srv = server()
    srv.sup.states["c1"].status = "running"
    assert requests.dispatch(srv, "conn", {"op": "wait", "id": "c1"}) is None  # type: ignore[arg-type]
    assert srv.waiters == {"c1": ["conn"]}


def test_the_launcher_goes_when_idle_past_its_linger_and_never_while_a_container_runs():
    from shoal.runtime.launcher.server import NO_CLIENT_TIMEOUT_S, should_exit

    assert should_exit(0, False, 0, True, 5.0, 0.0, 0.0), "no linger: idle means done"
    assert not should_exit(0, False, 0, True, 5.0, 1.0, 60.0), "idle 1 s of a 60 s linger: stays"
    assert should_exit(0, False, 0, True, 70.0, 60.0, 60.0)
    assert not should_exit(1, True, 0, True, 5.0, None, 0.0), "a running container keeps it, even after SIGTERM"
    assert should_exit(0, True, 2, True, 5.0, None, 60.0), "SIGTERM: done once nothing runs, sessions or not"
    assert not should_exit(0, False, 1, True, 5.0, None, 0.0), "a client still holds a session"
    assert not should_exit(0, False, 0, False, 5.0, 5.0, 0.0), "nobody said hello yet"
    assert should_exit(0, False, 0, False, NO_CLIENT_TIMEOUT_S + 1, NO_CLIENT_TIMEOUT_S + 1, 0.0), "its starter died"
