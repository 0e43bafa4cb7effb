"""``exec`` into a running container: the helper the launcher forks for each exec request.

The launcher forks a *helper* (so its own namespaces never change) and hands it the client's
connection. The helper joins the container's ipc, uts, net and pid namespaces (pid only affects
children), then forks the *exec'd process*, which joins the container's cgroup and cgroup namespace
(after its user namespace, which owns it), setns's into its mount namespace (that also moves its root and cwd to the container's), takes the container's
identity (capabilities, no_new_privs, uid/gid) and execs. The helper stays on the host's mount
namespace, so Python keeps working, and relays: output (stdout and stderr combined) to the
client, the client's stdin to the process, and finally the exit code. A timeout or a client that
hangs up SIGKILLs the exec'd process.

Wire (JSON lines on the client's connection, after the request): ``{"ok":true,"event":"started"}``,
then ``{"ok":true,"out":"<base64>"}``..., then ``{"ok":true,"exit_code":N,"timed_out":bool}``; a
setup failure (e.g. command not found) is ``{"ok":true,"exit_code":126|127,"error":"..."}``. The
client may send ``{"stdin":"<base64>"}`` and ``{"stdin_eof":true}`` lines.
"""

from __future__ import annotations

import base64
import json
import os
import select
import signal
import time
from dataclasses import dataclass
from typing import NoReturn

from shoal.runtime import linux, seccomp
from shoal.runtime.launcher import procutil
from shoal.runtime.launcher.child import process
from shoal.runtime.launcher.child.process import ProcessSpec

NAMESPACES = (("ipc", linux.CLONE_NEWIPC), ("uts", linux.CLONE_NEWUTS), ("net", linux.CLONE_NEWNET))
EXIT_TIMED_OUT = -1
"""``exit_code`` reported when the timeout killed the exec'd process (``timed_out`` is true too)."""


@dataclass(frozen=True)
class ExecSpec:
    """What the helper needs: the process to run (the same kind of spec as PID 1's) and where."""

    process: ProcessSpec
    target_pid: int
    """The container's PID 1, whose namespaces the helper joins."""
    timeout: float | None
    interactive: bool


def _send(conn: int, message: dict) -> None:
    data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
    view = memoryview(data)
    while view:
        _, writable, _ = select.select([], [conn], [], 10)
        if not writable:
            raise OSError("client does not read")
        view = view[os.write(conn, view) :]


def exec_child(spec: ExecSpec, fds: dict[str, int], in_r: int, out_w: int, err_w: int) -> NoReturn:
    """The exec'd process, in the container's ipc, uts, net and pid namespaces already: the rest, then execve.

    Also used by the launcher's collected execs (lightexec.py), which fork it without a helper."""
    user_fd = fds.get("user", -1)
    stage = "join cgroup"
    try:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        process.join_cgroup(spec.process.cgroup_procs)
        if user_fd >= 0:  # after the cgroup: inside the user namespace the host cgroupfs is not ours
            stage = "join user namespace"
            linux.setns(user_fd, linux.CLONE_NEWUSER)
            os.setresgid(0, 0, 0)  # become the namespace's root before taking the container's identity
            os.setresuid(0, 0, 0)
        stage = "join cgroup namespace"
        linux.setns(fds["cgroup"], linux.CLONE_NEWCGROUP)
        stage = "join mount namespace"
        linux.setns(fds["mnt"], linux.CLONE_NEWNS)
        os.setsid()
        os.dup2(in_r, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        linux.close_range_cloexec(3)
        stage = "drop privileges"
        process.enter(spec.process)
        stage = "chdir"
        os.chdir(spec.process.workdir)
        stage = "exec"
        path, env = process.executable(spec.process)
        stage = "seccomp"
        seccomp.apply(spec.process.seccomp)
        stage = "exec"
        process.execve(path, spec.process, env)
    except BaseException as exc:  # noqa: BLE001 - reported to the helper as text
        try:
            process.report(err_w, stage, exc)
        finally:
            os._exit(127)


def run_helper(spec: ExecSpec, conn: int) -> NoReturn:
    """The forked helper's whole life; never returns into the launcher's code."""
    code = 1
    try:
        process.reset_signals()
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # a vanished client is an OSError here
        procutil.close_fds_except({conn})
        os.set_blocking(conn, True)
        code = _helper(spec, conn)
    except BaseException:  # noqa: BLE001 - the client sees the connection close
        code = 1
    os._exit(code)


def open_namespaces(target_pid: int) -> dict[str, int]:
    """The namespaces of the container whose PID 1 is ``target_pid``, opened (close-on-exec); its user
    namespace only when it has one of its own."""
    fds = {
        ns: os.open(f"/proc/{target_pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
        for ns in ("ipc", "uts", "net", "pid", "mnt", "cgroup")
    }
    if os.stat("/proc/self/ns/user").st_ino != os.stat(f"/proc/{target_pid}/ns/user").st_ino:
        fds["user"] = os.open(f"/proc/{target_pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    return fds


def _helper(spec: ExecSpec, conn: int) -> int:
    fds = open_namespaces(spec.target_pid)
    for ns, flag in NAMESPACES:
        linux.setns(fds[ns], flag)
    linux.setns(fds["pid"], linux.CLONE_NEWPID)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    if spec.interactive:
        in_r, in_w = os.pipe2(os.O_CLOEXEC)
    else:
        in_r, in_w = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC), -1
    pid = os.fork()
    if pid == 0:
        exec_child(spec, fds, in_r, out_w, err_w)
    for fd in (out_w, err_w, in_r, *fds.values()):
        os.close(fd)
    failure = _read_all(err_r)
    os.close(err_r)
    if failure:
        os.waitpid(pid, 0)
        code = 127 if "not found" in failure or "no such file" in failure.lower() else 126
        _send(conn, {"ok": True, "exit_code": code, "error": failure, "timed_out": False})
        return 0
    _send(conn, {"ok": True, "event": "started"})
    code, timed_out = _relay(spec, conn, pid, out_r, in_w)
    _send(conn, {"ok": True, "exit_code": code, "timed_out": timed_out})
    return 0


def _read_all(fd: int) -> str:
    chunks = []
    while data := os.read(fd, 65536):
        chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


def _relay(spec: ExecSpec, conn: int, pid: int, out_r: int, in_w: int) -> tuple[int, bool]:
    """Copy output to the client and the client's stdin to the process until it exits."""
    pidfd = os.pidfd_open(pid)
    deadline = None if spec.timeout is None else time.monotonic() + spec.timeout
    pending = b""  # a partial stdin line from the client
    out_open, conn_open = True, True
    timed_out = False
    while True:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        watch = [pidfd] + ([out_r] if out_open else []) + ([conn] if conn_open else [])
        ready, _, _ = select.select(watch, [], [], wait)
        if not ready and deadline is not None and time.monotonic() >= deadline:
            _kill(pid)
            timed_out = True
            break
        if out_r in ready:
            data = os.read(out_r, 65536)
            if data:
                _send(conn, {"ok": True, "out": base64.b64encode(data).decode()})
            else:
                out_open = False
        if conn in ready:
            data = os.read(conn, 65536)
            if not data:  # the client went away: end the process
                conn_open = False
                _kill(pid)
                break
            pending += data
            while b"\n" in pending:
                line, _, pending = pending.partition(b"\n")
                in_w = _feed(in_w, line)
        if pidfd in ready:
            break
    _, status = os.waitpid(pid, 0)
    if out_open:  # what the process wrote just before it exited
        os.set_blocking(out_r, False)
        try:
            while data := os.read(out_r, 65536):
                _send(conn, {"ok": True, "out": base64.b64encode(data).decode()})
        except BlockingIOError:
            pass
    code = os.waitstatus_to_exitcode(status)
    code = 128 - code if code < 0 else code
    return (EXIT_TIMED_OUT if timed_out else code), timed_out


def _feed(in_w: int, line: bytes) -> int:
    """Apply one client stdin message; returns the (possibly closed: -1) stdin pipe."""
    try:
        msg = json.loads(line)
    except ValueError:
        return in_w
    if in_w < 0:
        return in_w
    if msg.get("stdin_eof"):
        os.close(in_w)
        return -1
    data = base64.b64decode(msg.get("stdin", ""))
    try:
        os.write(in_w, data)  # blocking: a process that never reads stalls only its own exec
    except BrokenPipeError:
        os.close(in_w)
        return -1
    return in_w


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
