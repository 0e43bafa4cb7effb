"""An exec whose output the client only collects, run without a helper: the launcher forks it and waits.

Why: health checks exec into every container every interval. Through the helper (child/exec.py) each
exec cost two forks of the launcher and a Python relay process, ~14 ms of CPU here: at 60 probes a
second (a 60-replica service with a 1 s check) that was most of a lab's CPU. For a non-interactive
exec that asks to be collected (``Runtime.exec``), the launcher instead forks the exec'd process
itself, straight into the container's pid namespace (``setns`` for its children, fork, ``setns`` back,
as ``start`` does), and its select loop does the rest: it keeps the last ``EXEC_OUTPUT_CAP`` bytes of
output, kills the process at its timeout or when the client hangs up, reaps it through a pidfd, and
answers once, with the same messages a helper sends: the output, then the exit code (or the setup
failure as exit code 126/127). Nothing is streamed, so a client that does not read can never hold the
launcher's loop for more than that one reply. The process itself joins its namespaces, cgroup and
identity exactly as a helper's child does (``child/exec.exec_child``).
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import time
from dataclasses import dataclass, field

from shoal.runtime import linux, protocol
from shoal.runtime.launcher.child import process
from shoal.runtime.launcher.child.exec import (
    EXIT_TIMED_OUT,
    NAMESPACES,
    ExecSpec,
    exec_child,
    open_namespaces,
)


@dataclass(eq=False)  # one per exec: kept in a set by identity
class Collected:
    """One exec the launcher runs and collects (see the module docstring)."""

    conn: socket.socket | None  # None once the client hung up
    pid: int
    pidfd: int
    out_r: int | None  # None at EOF
    err_r: int  # the setup-failure pipe: EOF at exec, a message if the setup failed
    deadline: float | None
    tail: bytearray = field(default_factory=bytearray)
    timed_out: bool = False

    def output(self, data: bytes) -> None:
        self.tail += data
        if len(self.tail) > protocol.EXEC_OUTPUT_CAP:
            del self.tail[: len(self.tail) - protocol.EXEC_OUTPUT_CAP]

    def kill(self) -> None:
        try:
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start(spec: ExecSpec, own_pidns: int, conn: socket.socket) -> Collected:
    """Fork the exec'd process into the container's namespaces; the launcher watches the returned record."""
    fds = open_namespaces(spec.target_pid)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    in_r = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    try:
        linux.setns(fds["pid"], linux.CLONE_NEWPID)  # for the launcher's children only
        try:
            pid = os.fork()
            if pid == 0:
                _child(spec, fds, in_r, out_w, err_w)  # execs, or exits
                os._exit(127)
        finally:
            linux.setns(own_pidns, linux.CLONE_NEWPID)  # the launcher's next children are its own again
    except BaseException:
        for fd in (out_r, err_r):
            os.close(fd)
        raise
    finally:
        for fd in (out_w, err_w, in_r, *fds.values()):
            os.close(fd)
    os.set_blocking(out_r, False)
    deadline = None if spec.timeout is None else time.monotonic() + spec.timeout
    return Collected(conn, pid, os.pidfd_open(pid), out_r, err_r, deadline)


def _child(spec: ExecSpec, fds: dict[str, int], in_r: int, out_w: int, err_w: int) -> None:
    """The forked process: the namespaces a helper would have joined for it, then the helper's child steps."""
    try:
        process.reset_signals()
        for ns, flag in NAMESPACES:
            linux.setns(fds[ns], flag)
    except BaseException as exc:  # noqa: BLE001 - reported to the launcher as text
        try:
            process.report(err_w, "join namespaces", exc)
        finally:
            os._exit(127)
    exec_child(spec, fds, in_r, out_w, err_w)


def exited(c: Collected) -> bool:
    """Whether the process has exited (and waits to be reaped)."""
    return os.waitid(os.P_PIDFD, c.pidfd, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def read_output(c: Collected) -> bool:
    """Take what the process wrote; False at EOF. The caller unregisters the pipe from its selector
    before ``close_output``: an fd closed while registered can stay in the epoll set (a child forked
    meanwhile holds it) and fire later under the number's next owner (once a live container's pidfd)."""
    assert c.out_r is not None
    try:
        while data := os.read(c.out_r, 65536):
            c.output(data)
    except BlockingIOError:
        return True
    return False


def close_output(c: Collected) -> None:
    if c.out_r is not None:
        os.close(c.out_r)
        c.out_r = None


def client_gone(c: Collected) -> bool:
    """The client's connection turned readable: True if it hung up (the process is killed then)."""
    assert c.conn is not None
    try:
        data = c.conn.recv(4096)
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        data = b""
    if data:
        return False  # a collected exec takes no stdin: ignored
    c.kill()
    return True


def finish(c: Collected) -> list[dict]:
    """The process exited: reap it and close its pidfd and pipes (unregistered by the caller); the messages
    for the client."""
    _, status = os.waitpid(c.pid, 0)
    os.close(c.pidfd)
    if c.out_r is not None:
        read_output(c)  # what it wrote just before it exited (a child it left may hold the pipe open)
        close_output(c)
    failure = _read_failure(c.err_r)
    os.close(c.err_r)
    if failure:
        code = 127 if "not found" in failure or "no such file" in failure.lower() else 126
        return [protocol.ok(exit_code=code, error=failure, timed_out=False)]
    code = os.waitstatus_to_exitcode(status)
    code = 128 - code if code < 0 else code
    out = [protocol.ok(out=base64.b64encode(bytes(c.tail)).decode())] if c.tail else []
    return out + [protocol.ok(exit_code=EXIT_TIMED_OUT if c.timed_out else code, timed_out=c.timed_out)]


def _read_failure(fd: int) -> str:
    """The child's setup failure, if any (its write end is closed by now: exec'd, or exited)."""
    os.set_blocking(fd, False)
    chunks = []
    try:
        while data := os.read(fd, 65536):
            chunks.append(data)
    except BlockingIOError:
        pass
    return b"".join(chunks).decode("utf-8", "replace")


def next_deadline(running: list[Collected]) -> float | None:
    """The nearest timeout among the running execs (``time.monotonic`` seconds)."""
    return min((c.deadline for c in running if c.deadline is not None and not c.timed_out), default=None)


def expire(running: list[Collected], now: float) -> None:
    """Kill the execs whose timeout passed (their pidfds then report the exits)."""
    for c in running:
        if c.deadline is not None and not c.timed_out and now >= c.deadline:
            c.timed_out = True
            c.kill()
