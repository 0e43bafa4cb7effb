"""Pieces of the launcher that run in forked processes, exercised in a fork of the test process: the
ctypes bindings and taking a process spec's identity (capabilities, no_new_privs, uid) (the log daemon:
test_runtime_logdaemon.py).
Each child reports on a pipe and ``_exit``s, so nothing of it leaks into the test process."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest

from shoal.runtime import caps, linux
from shoal.runtime.launcher.child import process
from shoal.runtime.launcher.child.process import ProcessSpec

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root: namespaces and capability changes")


def in_child(fn: Callable[[], str]) -> str:
    """Run ``fn`` in a forked child; its return value (or error) as text."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            out = fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            out = f"error {type(exc).__name__}: {exc}"
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    chunks = []
    while data := os.read(r, 65536):
        chunks.append(data)
    os.close(r)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


def status_fields(*names: str) -> str:
    with open("/proc/self/status") as f:
        found = {k: v.strip() for k, _, v in (line.partition(":") for line in f)}
    return " ".join(f"{n}={found[n]}" for n in names)


def test_failed_calls_raise_oserror_with_errno_and_path() -> None:
    with pytest.raises(OSError, match="setns: Bad file descriptor") as bad_fd:
        linux.setns(-1, linux.CLONE_NEWNET)
    assert bad_fd.value.errno == 9
    with pytest.raises(OSError) as missing:
        linux.mount(None, "/nonexistent/shoal-test", None, linux.MS_BIND)
    assert missing.value.filename == "/nonexistent/shoal-test" and "mount /nonexistent/shoal-test" in str(missing.value)


def test_close_range_marks_fds_close_on_exec() -> None:
    def child() -> str:
        fd = os.open("/dev/null", os.O_RDONLY)
        os.set_inheritable(fd, True)
        linux.close_range_cloexec(3)
        return str(os.get_inheritable(fd))

    assert in_child(child) == "False"


@needs_root
def test_unshare_gives_the_child_its_own_hostname() -> None:
    def child() -> str:
        linux.unshare(linux.CLONE_NEWUTS)
        socket.sethostname("shoal-unit-uts")
        return socket.gethostname()

    before = socket.gethostname()
    assert in_child(child) == "shoal-unit-uts"
    assert socket.gethostname() == before


@needs_root
def test_root_keeps_exactly_the_specs_capabilities_and_no_new_privs() -> None:
    spec = ProcessSpec(["true"], [], "/", 0, 0, (), caps.DOCKER_DEFAULT_MASK, process.last_cap())

    def child() -> str:
        process.enter(spec)
        return status_fields("CapEff", "CapBnd", "CapInh", "CapAmb", "NoNewPrivs")

    mask = f"{caps.DOCKER_DEFAULT_MASK:016x}"
    assert in_child(child) == f"CapEff={mask} CapBnd={mask} CapInh={0:016x} CapAmb={0:016x} NoNewPrivs=1"


@needs_root
def test_a_non_root_user_has_no_effective_capabilities() -> None:
    keep = caps.adjust(["NET_ADMIN"], [])
    spec = ProcessSpec(["true"], [], "/", 1000, 1000, (50,), keep, process.last_cap())

    def child() -> str:
        process.enter(spec)
        return f"{os.getuid()} {os.getgid()} {os.getgroups()} " + status_fields("CapEff", "CapBnd")

    assert in_child(child) == f"1000 1000 [50] CapEff={0:016x} CapBnd={keep:016x}"
