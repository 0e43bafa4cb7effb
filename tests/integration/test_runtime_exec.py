"""``Runtime.exec`` as root: it runs inside the container's namespaces, cgroup and identity.

Exec is what health checks use, so the tests cover output capture, exit codes, a command that is
not in the container, the timeout, stdin streaming, and a container that is not running.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from shoal.runtime import ContainerConfig, ContainerError, ExecResult, Runtime

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: containers use namespaces, mounts and cgroups"),
]


async def _sleeper(rt: Runtime, cid: str = "c1", **kw: object) -> None:
    await rt.create(ContainerConfig(id=cid, image="host", args=["/bin/sleep", "60"], **kw))  # type: ignore[arg-type]
    await rt.start(cid)


async def test_exec_runs_inside_the_container(rt: Runtime) -> None:
    await _sleeper(rt, hostname="boxy", env=["FOO=bar"], workdir="/tmp", pids_limit=50)
    script = "hostname; echo $FOO $EXTRA; pwd; ps -e -o comm=; grep -E 'CapEff|NoNewPrivs' /proc/self/status; cat /proc/self/cgroup; readlink /proc/self/ns/cgroup /proc/1/ns/cgroup; echo oops >&2; exit 3"
    res = await rt.exec("c1", ["sh", "-c", script], env=["EXTRA=x"])
    assert isinstance(res, ExecResult)
    text = res.output.decode()
    assert res.exit_code == 3 and not res.timed_out
    lines = text.splitlines()
    assert lines[:3] == ["boxy", "bar x", "/tmp"]
    assert (
        "sleep" in lines and len([x for x in lines if x in ("sleep", "sh", "ps")]) == 3
    )  # only its own pid ns
    assert "CapEff:\t00000000a80425fb" in text and "NoNewPrivs:\t1" in text
    # joined the container's cgroup and cgroup namespace, whose root that cgroup is (v1: pids line; v2: 0::)
    assert any(line.endswith(":/") and (":pids:" in line or line.startswith("0::")) for line in lines), lines
    ns = [line for line in lines if line.startswith("cgroup:[")]
    assert len(ns) == 2 and ns[0] == ns[1], ns
    assert "oops" in text


async def test_exec_missing_command_timeout_and_stdin(rt: Runtime) -> None:
    await _sleeper(rt)
    missing = await rt.exec("c1", ["no-such-command"])
    assert missing.exit_code == 127 and b"executable file not found" in missing.output
    slow = await rt.exec("c1", ["sleep", "30"], timeout=0.3)
    assert slow.timed_out and slow.exit_code == -1

    async def lines() -> AsyncIterator[bytes]:
        yield b"hello\n"
        yield b"world\n"

    out: list[bytes] = []
    res = await rt.exec_stream("c1", ["cat"], out.append, stdin=lines())
    assert res.exit_code == 0 and b"".join(out) == b"hello\nworld\n"
    big = await rt.exec("c1", ["sh", "-c", "head -c 200000 /dev/zero | tr '\\0' x; echo END"])
    assert big.exit_code == 0 and len(big.output) == 64 * 1024 and big.output.endswith(b"xEND\n")


async def test_exec_into_a_stopped_or_unknown_container_fails(rt: Runtime) -> None:
    await rt.create(ContainerConfig(id="c2", image="host", args=["/bin/true"]))
    with pytest.raises(ContainerError, match="not running"):
        await rt.exec("c2", ["true"])
    with pytest.raises(ContainerError, match="no such container"):
        await rt.exec("nope", ["true"])


async def test_a_collected_exec_ends_when_its_client_hangs_up(rt: Runtime) -> None:
    """Runtime.exec (health checks) runs in the launcher's own loop: a client that goes away (a probe
    cancelled with its task) takes the process with it, and the launcher keeps serving."""
    await _sleeper(rt)
    probe = asyncio.ensure_future(rt.exec("c1", ["sleep", "31"], timeout=30))
    await asyncio.sleep(0.5)
    probe.cancel()
    await asyncio.gather(probe, return_exceptions=True)
    for _ in range(50):
        ps = await rt.exec("c1", ["ps", "-e", "-o", "args="], timeout=10)
        if b"sleep 31" not in ps.output:
            break
        await asyncio.sleep(0.1)
    assert ps.exit_code == 0 and b"sleep 60" in ps.output and b"sleep 31" not in ps.output, ps.output


async def test_collected_execs_side_by_side_each_get_their_own_answer(rt: Runtime) -> None:
    # The timeouts only bound a hang: in the cgroup-v2 VM (emulated, on a loaded host) 12 shells side by
    # side once took over 10 s, and a timed-out exec (-1) read as a wrong answer.
    await _sleeper(rt)
    res = await asyncio.gather(
        *(rt.exec("c1", ["sh", "-c", f"sleep 0.{i % 3}; echo {i}; exit {i}"], timeout=60) for i in range(12))
    )
    assert [(r.exit_code, r.output) for r in res] == [(i, f"{i}\n".encode()) for i in range(12)]
    killed = await rt.exec("c1", ["sh", "-c", "kill -9 $$"], timeout=10)
    assert killed.exit_code == 137 and not killed.timed_out
    assert await rt.exec("c1", ["true"], timeout=10) == ExecResult(0, b"", False)


async def test_a_container_that_ends_under_a_collected_exec_is_reaped(rt: Runtime) -> None:
    """The end of a pid namespace waits until every process in it is reaped, and a collected exec's
    process is the launcher's own child: the launcher reaps it first (it once waited on PID 1 forever,
    the container's stop killing its health check with it: seen in a lab on kernel 6.18, where a dying
    PID 1's pidfd turns readable before its namespace is torn down; not reproducible on demand)."""
    for round_ in range(4):
        cid = f"k{round_}"
        await _sleeper(rt, cid)
        probes = [asyncio.ensure_future(rt.exec(cid, ["sleep", "30"], timeout=60)) for _ in range(10)]
        for _ in range(100):  # all ten run (a request the launcher reads after the kill fails otherwise)
            ps = await rt.exec(cid, ["ps", "-e", "-o", "args="], timeout=10)
            if ps.output.count(b"sleep 30") == 10:
                break
            await asyncio.sleep(0.05)
        await rt.kill(cid, 9)
        info = await asyncio.wait_for(rt.wait(cid), 10)
        assert info.exit_code == 137
        res = await asyncio.wait_for(asyncio.gather(*probes), 10)
        assert [r.exit_code for r in res] == [137] * 10
        await rt.delete(cid)
    assert await asyncio.wait_for(rt.list(), 5) == [], "the launcher still answers"


async def test_containers_started_among_many_collected_execs_stay_watched(rt: Runtime) -> None:
    """Collected execs fork often and close their pipes often; fd numbers are reused by the next
    container's pidfd. A pipe closed while still in the launcher's epoll set (a child forked meanwhile
    held it) once fired under a live container's pidfd: the launcher blocked reaping a running PID 1."""
    await _sleeper(rt, "base")
    for round_ in range(6):
        execs = [asyncio.ensure_future(rt.exec("base", ["sh", "-c", f"echo {i}"], timeout=60)) for i in range(25)]
        await _sleeper(rt, f"s{round_}")
        res = await asyncio.wait_for(asyncio.gather(*execs), 90)
        assert [r.output for r in res] == [f"{i}\n".encode() for i in range(25)]
    listed = await asyncio.wait_for(rt.list(), 5)
    assert sorted((c.id, c.status) for c in listed) == sorted([("base", "running")] + [(f"s{i}", "running") for i in range(6)])
    assert (await asyncio.wait_for(rt.exec("s5", ["true"], timeout=10), 10)).exit_code == 0


def _sleeping(*seconds: str) -> list[int]:
    """Host pids of the ``sleep SECONDS`` processes."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"sleep") and len(argv) > 1 and argv[1].decode(errors="replace") in seconds:
            found.append(int(pid))
    return found


async def test_a_stop_that_ends_in_sigkill_takes_every_process_of_the_container(rt: Runtime) -> None:
    """PID 1 ignores SIGTERM (as busybox httpd does); its own child and an exec'd process go with it."""
    await rt.create(ContainerConfig(id="c1", image="host", stop_grace_s=0.3,
                                    args=["/bin/sh", "-c", "trap '' TERM; sleep 7431 & sleep 7432"]))
    await rt.start("c1")
    probe = asyncio.create_task(rt.exec("c1", ["sleep", "7433"], timeout=30))
    for _ in range(100):
        if len(_sleeping("7431", "7432", "7433")) == 3:
            break
        await asyncio.sleep(0.05)
    assert len(_sleeping("7431", "7432", "7433")) == 3
    info = await asyncio.wait_for(rt.stop("c1"), 10)
    assert (info.status, info.exit_code) == ("exited", 137)
    res = await asyncio.wait_for(probe, 10)
    assert res.exit_code != 0
    assert _sleeping("7431", "7432", "7433") == []
