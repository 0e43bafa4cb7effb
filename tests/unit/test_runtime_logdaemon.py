"""The log daemon (runtime/launcher/logshim.py) and the launcher's side of it (logsink.py), in a fork of the
test process: docker's json-file records per stream, several containers at once each complete on ``wait``,
logs that keep flowing once the launcher has gone, and a daemon that died replaced without losing the
containers' pipes."""

from __future__ import annotations

import json
import os
import resource
import signal
import time
from pathlib import Path

from shoal.runtime import logs
from shoal.runtime.launcher import logshim
from shoal.runtime.launcher.logsink import LogSink
from tests.fixtures.fresh import in_fresh_interpreter

WAIT_S = 30.0  # the launcher gives 2 s; a loaded test machine may need longer


def _pipes() -> tuple[int, int, int, int]:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    return out_r, out_w, err_r, err_w


def _hand_over(sink: LogSink, cid: str, path: str) -> tuple[int, int]:
    """A container's pipes given to the daemon (the launcher closes its own read ends after, as start.py)."""
    out_r, out_w, err_r, err_w = _pipes()
    sink.add(cid, out_r, err_r, path)
    os.close(out_r)
    os.close(err_r)
    return out_w, err_w


def _gone(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


@in_fresh_interpreter
def test_records_per_stream_with_long_lines_cut_and_the_last_line_kept(tmp_path: Path) -> None:
    sink = LogSink()
    path = str(tmp_path / "ctr.log")
    out_w, err_w = _hand_over(sink, "c1", path)
    try:
        os.write(out_w, b"one\ntw")
        os.write(err_w, b"oops\n")
        os.write(out_w, b"o\n" + b"x" * (logshim.MAX_LINE + 5) + b"\nno newline at the end")
        os.close(out_w)
        os.close(err_w)
        sink.wait("c1", timeout=WAIT_S)
        records = list(logs.records(path))
        out = [r["log"] for r in records if r["stream"] == "stdout"]
        assert out == ["one\n", "two\n", "x" * logshim.MAX_LINE, "xxxxx\n", "no newline at the end"]
        assert [r["log"] for r in records if r["stream"] == "stderr"] == ["oops\n"]
        assert all(r["time"].endswith("Z") for r in records)
        with open(path) as f:
            assert all(json.loads(line)["log"] for line in f)
    finally:
        sink.close()


@in_fresh_interpreter
def test_one_daemon_serves_several_containers_each_complete_when_waited(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))  # a shell's 1024, or less
    sink = LogSink()
    try:
        a = _hand_over(sink, "a", str(tmp_path / "a.log"))
        b = _hand_over(sink, "b", str(tmp_path / "b.log"))
        daemon = sink.pid
        for i in range(50):
            os.write(a[0], f"a{i}\n".encode())
            os.write(b[1], f"b{i}\n".encode())
        for fd in (*b, *a):  # b finishes first: its "done" comes while nobody waits for it yet
            os.close(fd)
        sink.wait("a", timeout=WAIT_S)
        assert logs.text(str(tmp_path / "a.log")) == "".join(f"a{i}\n" for i in range(50))
        sink.wait("b", timeout=WAIT_S)
        assert [r["stream"] for r in logs.records(str(tmp_path / "b.log"))] == ["stderr"] * 50
        c = _hand_over(sink, "c", str(tmp_path / "c.log"))
        assert sink.pid == daemon, "no fork per container"
        assert Path(f"/proc/{daemon}/comm").read_text().strip() == logshim.COMM
        nofile = next(line for line in Path(f"/proc/{daemon}/limits").read_text().splitlines() if "open files" in line)
        assert nofile.split()[3] == nofile.split()[4], "its soft fd limit is the hard one (three fds a container)"
        os.write(c[0], b"late\n")
        os.close(c[0])
        os.close(c[1])
        sink.wait("c", timeout=WAIT_S)
        assert logs.text(str(tmp_path / "c.log")) == "late\n"
    finally:
        sink.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@in_fresh_interpreter
def test_logs_keep_flowing_once_the_launcher_has_gone_and_the_daemon_then_exits(tmp_path: Path) -> None:
    sink = LogSink()
    path = str(tmp_path / "ctr.log")
    out_w, err_w = _hand_over(sink, "c1", path)
    daemon = sink.pid
    sink.close()  # the launcher exits (or is restarted) while the container runs
    os.write(out_w, b"still here\n")
    os.close(out_w)
    os.close(err_w)
    deadline = time.monotonic() + WAIT_S
    while not _gone(daemon) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(daemon), "the daemon exits once the launcher has gone and its last pipe closed"
    assert logs.text(path) == "still here\n"


@in_fresh_interpreter
def test_a_daemon_that_died_is_replaced_and_the_running_containers_keep_their_logs(tmp_path: Path) -> None:
    sink = LogSink()
    path = str(tmp_path / "ctr.log")
    try:
        out_w, err_w = _hand_over(sink, "c1", path)
        os.write(out_w, b"before\n")
        deadline = time.monotonic() + WAIT_S
        while logs.text(path) != "before\n" and time.monotonic() < deadline:
            time.sleep(0.02)
        first = sink.pid
        os.kill(first, signal.SIGKILL)
        while not _gone(first) and time.monotonic() < deadline:
            time.sleep(0.02)
        os.write(out_w, b"after\n")  # no broken pipe: the launcher still holds a read end
        other_w = _hand_over(sink, "c2", str(tmp_path / "c2.log"))  # noticed here: a new daemon takes both
        assert sink.pid not in (0, first)
        os.close(out_w)
        os.close(err_w)
        sink.wait("c1", timeout=WAIT_S)
        assert logs.text(path) == "before\nafter\n"
        for fd in other_w:
            os.close(fd)
        sink.wait("c2", timeout=WAIT_S)
    finally:
        sink.close()
