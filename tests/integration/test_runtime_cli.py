"""The node-local CLI as root, through click's runner: image load/ls/rm, run, ps, exec, logs, stats,
stop, rm, volumes, and one-line errors for bad input."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from shoal.cli import containers_common
from shoal.cli.main import main
from shoal.runtime.layout import Layout
from tests.fixtures import busybox_image
from tests.timing import wait_until

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: containers use namespaces, mounts and cgroups"),
    pytest.mark.skipif(not os.path.exists(busybox_image.BUSYBOX), reason="needs Debian's busybox-static"),
]


def launcher_pid(root: Path) -> int:
    """The pid of the last launcher that started for this state dir (its log's "launcher ready" line)."""
    lines = [ln for ln in Path(Layout(str(root)).launcher_log).read_text().splitlines() if '"launcher ready"' in ln]
    return int(lines[-1].split('"pid": ')[1].split(",")[0])


def gone(pid: int) -> bool:
    """A zombie counts as gone: a launcher the CLI started in this process is this process' child."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def stop_launcher(root: Path) -> None:
    """SIGTERM the state dir's launcher (it exits once no container runs) and wait until it has gone."""
    if not Path(Layout(str(root)).socket).exists():
        return
    pid = launcher_pid(root)
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: gone(pid), 30, "the launcher's exit after SIGTERM")


@pytest.fixture
def shoal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    root = tmp_path / "root"
    monkeypatch.setattr(containers_common, "CGROUP_PARENT", f"shoal-test-{uuid.uuid4().hex[:8]}")
    # One launcher serves the whole test, as the CLI's default linger has it between a user's commands (a
    # launcher start per command is seconds in the cgroup-v2 VM); the teardown stops it: none is left behind.
    monkeypatch.setenv("SHOAL_LAUNCHER_LINGER_S", "600")
    runner = CliRunner()

    def invoke(*args: str, code: int = 0, stdin: str | None = None) -> Result:
        res = runner.invoke(main, [*args, "--root", str(root)] if args[0] not in ("run", "exec") else [args[0], "--root", str(root), *args[1:]], input=stdin)
        assert res.exit_code == code, (args, res.exit_code, res.stdout, res.stderr, res.exception)
        return res

    yield invoke
    ids = runner.invoke(main, ["ps", "-aq", "--no-trunc", "--root", str(root)]).stdout.split()
    if ids:
        runner.invoke(main, ["rm", "-f", *ids, "--root", str(root)])
    stop_launcher(root)
    assert not Path(Layout(str(root)).socket).exists(), "the launcher took its socket with it"


def test_local_workflow(shoal, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tar = tmp_path / "bb.tar"
    busybox_image.build(str(tar))
    assert shoal("image", "load", "-i", str(tar)).stdout == "Loaded image: busybox:latest\n"
    table = shoal("images").stdout.splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"] and table[1].startswith("busybox")
    res = shoal("run", "--rm", "-e", "A=1", "busybox", "sh", "-c", "echo out $A; echo err >&2; exit 3", code=3)
    assert res.stdout == "out 1\n" and res.stderr == "err\n"
    cid = shoal("run", "-d", "--name", "web", "-m", "64m", "--cpus", "0.5", "--init", "-v", "data:/data", "busybox", "httpd", "-f", "-p", "8080", "-h", "/var/www").stdout.strip()
    assert len(cid) == 64
    ps = shoal("ps").stdout.splitlines()
    assert len(ps) == 2 and ps[1].startswith(cid[:12]) and ps[1].endswith("web") and "Up " in ps[1]
    got = shoal("exec", "web", "wget", "-qO-", "http://127.0.0.1:8080/index.html").stdout
    assert got == "hello from busybox\n"
    assert shoal("exec", "-i", "web", "cat", stdin="piped\n").stdout == "piped\n"
    shoal("exec", "web", "sh", "-c", "exit 7", code=7)
    stats = shoal("stats", "--no-stream", "web").stdout.splitlines()
    assert stats[1].split()[1] == "web" and "/ 64MiB" in stats[1]
    shoal("volume", "rm", "data", code=1)
    shoal("stop", "web")
    assert "Exited (143)" in shoal("ps", "-a").stdout
    shoal("image", "rm", "busybox", code=1)
    shoal("rm", "web")
    assert shoal("volume", "ls", "-q").stdout == "data\n"
    shoal("volume", "rm", "data")
    assert "Untagged: busybox:latest" in shoal("image", "rm", "busybox").stdout


def test_logs_tail_and_timestamps(shoal) -> None:  # type: ignore[no-untyped-def]
    shoal("run", "--name", "l", "host", "/bin/sh", "-c", "for i in 1 2 3 4; do echo line$i; done")
    assert shoal("logs", "l").stdout == "line1\nline2\nline3\nline4\n"
    assert shoal("logs", "--tail", "2", "l").stdout == "line3\nline4\n"
    stamped = shoal("logs", "-t", "-n", "1", "l").stdout
    assert stamped.endswith("Z line4\n") and stamped.startswith("20")
    assert shoal("logs", "-f", "l").stdout.count("line") == 4


def test_bad_input_is_one_clear_line(shoal, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = shoal("run", "nothere:1", "true", code=1)
    assert res.stderr.strip() == "Error: image nothere:1 not found"
    res = shoal("run", "-v", "/no/such:/x", "host", "true", code=1)
    assert "bind source path does not exist: /no/such" in res.stderr
    res = shoal("run", "--cpus", "64", "host", "true", code=1)
    assert "range of CPUs" in res.stderr
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"junk" * 100)
    res = shoal("image", "load", "-i", str(junk), code=1)
    assert res.stderr.startswith("Error: invalid image archive") and len(res.stderr.strip().splitlines()) == 1
    shoal("logs", "nope", code=1)
    assert shoal("ps", "-a", "-q").stdout == ""


def test_the_local_launcher_stays_between_commands_then_goes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``shoal run --rm`` twice in a row: the second finds the launcher the first started (no start-up paid
    again); once idle for its linger it exits and takes its socket and cgroup parent with it."""
    import time

    root = tmp_path / "root"
    monkeypatch.setattr(containers_common, "CGROUP_PARENT", f"shoal-test-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("SHOAL_LAUNCHER_LINGER_S", "2")
    runner = CliRunner()
    sock = Path(Layout(str(root)).socket)

    for _ in range(2):
        res = runner.invoke(main, ["run", "--root", str(root), "--rm", "host", "true"])
        assert res.exit_code == 0, (res.stdout, res.stderr)
    assert sock.exists(), "the launcher stays after the command"
    with open(Layout(str(root)).launcher_log) as f:
        assert sum('"launcher ready"' in ln for ln in f) == 1, "the second run used the first run's launcher"
    pid = launcher_pid(root)

    deadline = time.monotonic() + 30
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(pid) and not sock.exists(), "idle past its linger, it exits"


def test_run_with_docker_container_options(shoal, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tar = tmp_path / "bb.tar"
    busybox_image.build(str(tar))
    shoal("image", "load", "-i", str(tar))
    script = ("touch /etc/x 2>/dev/null || echo ro; echo t > /scratch/t && echo tmpfs; ulimit -n; "
              "cat /proc/sys/net/core/somaxconn; ls /www")
    res = shoal("run", "--rm", "--read-only", "--tmpfs", "/scratch", "--ulimit", "nofile=50", "--sysctl", "net.core.somaxconn=99",
                "--mount", "type=volume,source=www,target=/var/www,volume-nocopy", "-v", "www2:/www",
                "busybox", "sh", "-c", script)  # fmt: skip
    assert res.stdout.split() == ["ro", "tmpfs", "50", "99"], res.stdout
    assert shoal("volume", "ls", "-q").stdout.split() == ["www", "www2"]
