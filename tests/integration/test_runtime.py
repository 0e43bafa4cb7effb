"""The real runtime as root: namespaces, cgroup limits, read-only host root, caps, OOM, stop, cleanup.

Each test gets its own state dir and cgroup parent; the fixture force-deletes whatever a test left
and closes the launcher even when the test fails.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import pytest

from shoal.runtime import (
    ConfigError,
    ContainerConfig,
    ContainerInfo,
    ContainerNotFound,
    ImageNotFound,
    Runtime,
    StartError,
    logs,
)
from tests.fixtures.runtime import alive, cgroup_parent, teardown, wait_for_log
from tests.timing import eventually, scaled

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: containers use namespaces, mounts and cgroups"),
    pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup"), reason="no cgroup filesystem mounted"),
]

SH = "/bin/sh"


async def run(rt: Runtime, cid: str, args: list[str], **kw: object) -> tuple[ContainerInfo, str]:
    """Create, start and wait for a container; returns its final info and its log."""
    await rt.create(ContainerConfig(id=cid, image="host", args=args, **kw))  # type: ignore[arg-type]
    await rt.start(cid)
    info = await asyncio.wait_for(rt.wait(cid), 20)
    return info, logs.text(info.log_path)


def cgroup_dirs(info: ContainerInfo) -> dict[str, Path]:
    """The container's cgroup directory per controller, found the way an operator would."""
    own = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(",") if ctrls else [""]:
            own[c] = path
    rel = info.cgroup
    dirs = {}
    for ctrl in ("memory", "pids", "cpu", "freezer"):
        if ctrl in own and Path(f"/sys/fs/cgroup/{ctrl}").is_dir():
            base = own[ctrl] if not rel.startswith("/") else "/"
            dirs[ctrl] = Path(f"/sys/fs/cgroup/{ctrl}{base.rstrip('/')}/{rel.lstrip('/')}")
    if not dirs:  # unified v2 host
        dirs[""] = Path(f"/sys/fs/cgroup{own[''].rstrip('/')}/{rel.lstrip('/')}")
    return dirs


async def _gone(pid: int) -> bool:
    return not alive(pid)


def mounts_mentioning(text: str) -> list[str]:
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if text in line]


async def test_exit_code_and_log(rt: Runtime) -> None:
    info, log = await run(rt, "exit3", [SH, "-c", "echo hi; echo err >&2; exit 3"])
    assert (info.status, info.exit_code, info.oom_killed) == ("exited", 3, False)
    assert "hi" in log and "err" in log
    assert info.started_at is not None and info.finished_at is not None
    assert info.created_at <= info.started_at <= info.finished_at


async def test_namespaces_cgroup_and_limits(rt: Runtime) -> None:
    await rt.create(
        ContainerConfig(
            id="ns", image="host", args=[SH, "-c", "echo pid=$$; hostname; exec sleep 1000"],
            hostname="box1", memory_bytes=64 << 20, pids_limit=50, nano_cpus=500_000_000,
        )
    )  # fmt: skip
    info = await rt.start("ns")
    log = await wait_for_log(info, "box1")
    assert "pid=1\n" in log
    for ns in ("pid", "mnt", "uts", "ipc", "net"):
        assert os.readlink(f"/proc/{info.pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"), ns
    proc_cgroup = Path(f"/proc/{info.pid}/cgroup").read_text()
    assert info.cgroup.endswith("/ns") and info.cgroup in proc_cgroup
    dirs = cgroup_dirs(info)
    if "memory" in dirs:  # cgroup v1
        assert (dirs["memory"] / "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
        assert (dirs["pids"] / "pids.max").read_text().strip() == "50"
        assert (dirs["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "50000"
        assert str(info.pid) in (dirs["memory"] / "cgroup.procs").read_text().split()
    else:
        assert (dirs[""] / "memory.max").read_text().strip() == str(64 << 20)
        assert (dirs[""] / "pids.max").read_text().strip() == "50"
    stopped = await rt.stop("ns", grace_s=0.1)
    assert stopped.exit_code == 137


async def test_root_is_read_only_tmp_writable_caps_reduced(rt: Runtime) -> None:
    script = (
        "touch /etc/shoal-x 2>/dev/null && echo etc-writable; "
        "touch /tmp/y && echo tmp-ok; "
        "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; "
        "echo run=$(ls -A /run | wc -l); "
        "cat /proc/kcore | wc -c; "
        "echo 1 > /proc/sys/vm/drop_caches 2>/dev/null && echo procsys-writable; "
        "ls /dev | tr '\\n' ' '"
    )
    info, log = await run(rt, "ro", [SH, "-c", script])
    assert info.exit_code == 0, log
    assert "etc-writable" not in log and "tmp-ok" in log
    assert not Path("/etc/shoal-x").exists()
    assert "CapEff:\t00000000a80425fb" in log
    assert "CapBnd:\t00000000a80425fb" in log
    assert "NoNewPrivs:\t1" in log
    assert "run=0" in log  # a private, empty /run: the host's sockets are not visible
    assert "\n0\n" in log  # /proc/kcore is masked
    assert "procsys-writable" not in log
    for dev in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx"):
        assert dev in log.split(), dev


async def test_state_dir_is_hidden_inside() -> None:
    """The launcher socket must be unreachable from a container even when it lives on the host root."""
    state_dir = Path(tempfile.mkdtemp(prefix="shoal-test-", dir="/var/tmp"))
    runtime = Runtime(state_dir, cgroup_parent=cgroup_parent())
    await runtime.open()
    try:
        sock = state_dir / "launcher.sock"
        assert sock.exists()
        info, log = await run(
            runtime, "peek", [SH, "-c", f"ls -A {state_dir} | wc -l; test -e {sock} && echo seen; exit 0"]
        )
        assert info.exit_code == 0 and log.split()[0] == "0" and "seen" not in log
    finally:
        await teardown(runtime)
        shutil.rmtree(state_dir, ignore_errors=True)


async def test_env_workdir_user(rt: Runtime) -> None:
    info, log = await run(
        rt, "env", [SH, "-c", 'echo "$FOO|$HOME|$HOSTNAME|$(pwd)|$(id -u):$(id -g)"; grep CapEff /proc/self/status'],
        env=["FOO=bar baz"], workdir="/etc", user="nobody",
    )  # fmt: skip
    assert info.exit_code == 0, log
    assert "bar baz|/nonexistent|env|/etc|65534:65534" in log
    assert "CapEff:\t0000000000000000" in log
    info, log = await run(rt, "uidgid", ["id"], user="1234:4321")
    assert "uid=1234 gid=4321" in log


async def test_oom_kill_is_reported(rt: Runtime) -> None:
    python = shutil.which("python3", path="/usr/bin:/bin") or os.path.realpath(sys.executable)
    info, _ = await run(rt, "oom", [python, "-c", "x = bytearray(200 << 20)"], memory_bytes=32 << 20)
    assert info.oom_killed is True
    assert info.exit_code == 137


async def test_stop_escalates_to_sigkill_for_pid1_ignoring_sigterm(rt: Runtime) -> None:
    await rt.create(ContainerConfig(id="sleeper", image="host", args=["sleep", "1000"], stop_grace_s=0.5))
    await rt.start("sleeper")
    t0 = time.monotonic()
    info = await rt.stop("sleeper")  # the config's grace
    elapsed = time.monotonic() - t0
    assert 0.45 <= elapsed < 5, elapsed
    assert (info.status, info.exit_code) == ("exited", 137)


async def test_stop_is_graceful_when_pid1_handles_sigterm(rt: Runtime) -> None:
    await rt.create(
        ContainerConfig(
            id="polite",
            image="host",
            args=[SH, "-c", "trap 'exit 7' TERM; echo up; while :; do sleep 0.02; done"],
        )
    )
    info = await rt.start("polite")
    await wait_for_log(info, "up")
    t0 = time.monotonic()
    info = await rt.stop("polite", grace_s=10)
    assert info.exit_code == 7 and time.monotonic() - t0 < 5


async def test_kill_sends_signal_to_pid1(rt: Runtime) -> None:
    await rt.create(
        ContainerConfig(
            id="k", image="host", args=[SH, "-c", "trap 'exit 9' USR1; echo up; while :; do sleep 0.02; done"]
        )
    )
    info = await rt.start("k")
    await wait_for_log(info, "up")
    await rt.kill("k", signal.SIGUSR1)
    assert (await asyncio.wait_for(rt.wait("k"), 10)).exit_code == 9


async def test_bad_command_gives_start_error_and_leaves_nothing(rt: Runtime) -> None:
    info = await rt.create(ContainerConfig(id="bad", image="host", args=["no-such-command-xyz"]))
    dirs = cgroup_dirs(info)
    with pytest.raises(StartError, match='exec: "no-such-command-xyz": executable file not found in \\$PATH'):
        await rt.start("bad")
    after = await rt.inspect("bad")
    assert after.status == "created" and after.pid == 0
    assert all((d / "cgroup.procs").read_text().strip() == "" for d in dirs.values())
    with pytest.raises(StartError, match="No such file or directory"):
        await rt.create(ContainerConfig(id="bad2", image="host", args=["/no/such/binary"]))
        await rt.start("bad2")
    with pytest.raises(StartError, match="chdir to cwd"):
        await rt.create(ContainerConfig(id="bad3", image="host", args=["true"], workdir="/no/such/dir"))
        await rt.start("bad3")
    for cid in ("bad", "bad2", "bad3"):
        await rt.delete(cid)
    assert all(not d.exists() for d in dirs.values())
    assert await rt.list() == []
    assert mounts_mentioning(str(rt.layout.containers)) == []
    assert os.listdir(rt.layout.containers) == []


async def test_delete_leaves_no_cgroup_mount_process_or_state(rt: Runtime) -> None:
    await rt.create(
        ContainerConfig(
            id="busy", image="host", args=[SH, "-c", "sleep 1000 & sleep 1000 & echo up; exec sleep 1000"]
        )
    )
    info = await rt.start("busy")
    await wait_for_log(info, "up")
    dirs = cgroup_dirs(info)
    pids = [int(p) for d in dirs.values() for p in (d / "cgroup.procs").read_text().split()]
    assert len(set(pids)) == 3
    with pytest.raises(Exception, match="running"):
        await rt.delete("busy")
    await rt.delete("busy", force=True)
    assert not any(alive(p) for p in pids)
    assert all(not d.exists() for d in dirs.values())
    assert mounts_mentioning("/busy/") == []
    assert not Path(rt.layout.container_dir("busy")).exists()
    with pytest.raises(ContainerNotFound):
        await rt.inspect("busy")


async def test_unknown_image_and_duplicate_id(rt: Runtime) -> None:
    with pytest.raises(ImageNotFound, match="image busybox:latest not found"):
        await rt.create(ContainerConfig(id="img", image="busybox:latest", args=["true"]))
    assert not Path(rt.layout.container_dir("img")).exists()
    await rt.create(ContainerConfig(id="dup", image="host", args=["true"]))
    with pytest.raises(ConfigError, match="already exists"):
        await rt.create(ContainerConfig(id="dup", image="host", args=["true"]))
    with pytest.raises(ConfigError, match="invalid container id"):
        await rt.create(ContainerConfig(id="Bad/Id", image="host", args=["true"]))
    with pytest.raises(ContainerNotFound):
        await rt.start("nope")


async def test_two_runtimes_do_not_see_each_other(rt: Runtime, tmp_path: Path) -> None:
    other = Runtime(tmp_path / "other-state", cgroup_parent="/" + cgroup_parent())  # from the hierarchy root
    await other.open()
    try:
        a = await rt.create(ContainerConfig(id="same", image="host", args=["true"], labels={"who": "a"}))
        b = await other.create(ContainerConfig(id="same", image="host", args=["true"], labels={"who": "b"}))
        assert a.cgroup != b.cgroup and b.cgroup.startswith("/shoal-test-")
        await other.create(ContainerConfig(id="abs", image="host", args=["sleep", "30"]))
        info = await other.start("abs")
        # as the host sees it (inside, its private cgroup namespace shows "/")
        lines = Path(f"/proc/{info.pid}/cgroup").read_text().splitlines()
        assert any(line.endswith(f":{info.cgroup}") for line in lines), lines
        await other.delete("abs", force=True)
        assert [(i.id, i.labels) for i in await rt.list()] == [("same", {"who": "a"})]
        assert [(i.id, i.labels) for i in await other.list()] == [("same", {"who": "b"})]
        await other.create(ContainerConfig(id="only-other", image="host", args=["true"]))
        with pytest.raises(ContainerNotFound):
            await rt.delete("only-other")
        await rt.delete("same")
        assert [i.id for i in await other.list()] == ["only-other", "same"]
    finally:
        await teardown(other)


async def test_containers_outlive_the_client_and_launcher_is_reattached(tmp_path: Path) -> None:
    parent = cgroup_parent()
    first = Runtime(tmp_path / "state", cgroup_parent=parent)
    await first.open()
    second = Runtime(tmp_path / "state", cgroup_parent=parent)
    try:
        launcher = first.launcher_pid
        assert launcher is not None and os.getpgid(launcher) != os.getpgid(0)  # own session: no Ctrl-C
        await first.create(ContainerConfig(id="long", image="host", args=["sleep", "1000"]))
        await first.start("long")
        await first.close()  # the launcher stays while a container runs
        assert alive(launcher)
        await second.open()
        assert second.launcher_pid == launcher
        assert (await second.inspect("long")).status == "running"
        info = await second.stop("long", grace_s=0)
        assert info.exit_code == 137
    finally:
        await teardown(second)


AGENT = """
import asyncio, os, sys
from shoal.runtime import ContainerConfig, Runtime

async def main():
    rt = Runtime(sys.argv[1], cgroup_parent=sys.argv[2])
    await rt.open()
    await rt.create(ContainerConfig(id="orphan", image="host", args=["sh", "-c", "sleep 0.5; exit 4"]))
    await rt.start("orphan")
    print(rt.launcher_pid, flush=True)
    os.kill(os.getpid(), 9)

asyncio.run(main())
"""


async def test_launcher_outlives_a_killed_agent_and_records_the_exit(tmp_path: Path) -> None:
    state_dir, parent = tmp_path / "state", cgroup_parent()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", AGENT, str(state_dir), parent, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), scaled(20))
    assert proc.returncode == -9
    launcher = int(out.split()[0])
    assert alive(launcher)  # the agent died (kill -9) but the container still runs
    deadline = time.monotonic() + scaled(10)
    while alive(launcher) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not alive(launcher), "the launcher should exit once the container exited and no client is left"
    rt = Runtime(state_dir, cgroup_parent=parent)
    await rt.open()
    try:
        info = await rt.inspect("orphan")
        assert (info.status, info.exit_code) == ("exited", 4)
    finally:
        await teardown(rt)


async def test_a_new_launcher_readopts_running_containers_after_a_launcher_crash(tmp_path: Path) -> None:
    parent = cgroup_parent()
    first = Runtime(tmp_path / "state", cgroup_parent=parent)
    await first.open()
    await first.create(ContainerConfig(id="survivor", image="host", args=["sleep", "1000"]))
    await first.create(ContainerConfig(id="short", image="host", args=["sleep", "0.2"]))
    survivor = await first.start("survivor")
    short_pid = (await first.start("short")).pid
    assert first.launcher_pid is not None
    os.kill(first.launcher_pid, signal.SIGKILL)  # our own launcher, by pid
    await first.close()
    await eventually(lambda: _gone(short_pid), 10, "the short container's exit")  # while no launcher runs
    second = Runtime(tmp_path / "state", cgroup_parent=parent)
    await second.open()
    try:
        assert second.launcher_pid != first.launcher_pid
        short = await second.inspect("short")
        assert short.status == "exited" and short.exit_code is None  # its status was lost with the launcher
        info = await second.inspect("survivor")
        assert info.status == "running" and info.pid == survivor.pid
        stopped = await second.stop("survivor", grace_s=0)
        assert stopped.status == "exited" and not alive(survivor.pid)
    finally:
        await teardown(second)
