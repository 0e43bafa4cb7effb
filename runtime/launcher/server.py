"""The launcher ("zygote"): a small single-threaded process that forks every container.

The agent is multi-threaded (gRPC) and large; forking there can deadlock and costs ~22 ms per GiB
of its memory (findings §4, pitfalls 5-6). So ``Runtime.open()`` starts this process once, in its
own session (a Ctrl-C at the agent's terminal does not reach it), and talks to it over a unix
socket in the state dir. One select loop serves requests, watches each container's pidfd and
records exits; containers belong to the launcher and survive the agent.

Lifetime: every ``Runtime`` holds one *session* connection (opened by ``hello``). The launcher
exits when no session is left and no container is running, so exit codes are never lost: a
``Runtime.close()``, or an agent that dies (kill -9 closes its socket), lets it go once the last
container has exited, and an agent that comes back before that re-attaches to it. SIGTERM makes it
exit as soon as no container runs, whatever the sessions. With ``linger_s`` it stays that long once
idle (no session, no container), as a daemon would: the node-local CLI (``shoal run --rm``) starts it
with a linger, so a series of commands does not pay a launcher start-up each.

Started as ``python -E -s -m shoal.runtime.launcher`` (see __main__.py); operations are in requests.py.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import time
from typing import Any

from shoal.runtime import cgroup, linux, protocol
from shoal.runtime.errors import ContainerError
from shoal.runtime.launcher import jsonlog, lightexec, requests, trace
from shoal.runtime.launcher.child import userns
from shoal.runtime.launcher.supervisor import Supervisor
from shoal.runtime.layout import Layout

_log = jsonlog.get("shoal.runtime.launcher")
COLLECTED_EVENTS = ("collected-exit", "collected-out", "collected-conn")
SETTLE_S = 5.0
"""How long a container's exit waits for the execs in it to end (see Launcher._settle_collected)."""
NO_CLIENT_TIMEOUT_S = 30.0
"""A launcher nobody ever said hello to (its starter died) exits after this long."""


def should_exit(running: int, terminate: bool, sessions: int, had_session: bool, alive_s: float, idle_s: float | None, linger_s: float) -> bool:
    """Whether the launcher is done (pure): no container runs, and SIGTERM came, or nobody holds a session
    (after at least one, or NO_CLIENT_TIMEOUT_S without any) and it has been idle ``linger_s``."""
    if running:
        return False
    if terminate:
        return True
    orphaned = had_session or alive_s > NO_CLIENT_TIMEOUT_S
    return not sessions and orphaned and idle_s is not None and idle_s >= linger_s


def loggable(line: bytes) -> str:
    """The start of a request line for a log, unless it carries file data (secrets): then only its op."""
    if b'"files"' in line or b'"data"' in line:
        return "(a request carrying files: not logged)"
    return line[:200].decode("utf-8", "replace")


class Launcher:
    """The select loop: client connections, container pidfds and signals."""

    def __init__(self, layout: Layout, cgroup_parent: str, image_root: str | None = None, linger_s: float = 0.0) -> None:
        self.layout = layout
        self.linger_s = linger_s
        self.idle_since: float | None = None  # since when no session is held and no container runs
        self.sel = selectors.DefaultSelector()
        self.cgroups = cgroup.detect(cgroup_parent)
        self.sup = Supervisor(layout, self.cgroups, self._watch_pidfd, self.sel.unregister, image_root)
        self.waiters: dict[str, list[socket.socket]] = {}
        self.helpers: set[int] = set()
        self.collected: set[lightexec.Collected] = set()  # execs this loop runs itself (lightexec.py)
        self.buffers: dict[socket.socket, bytearray] = {}
        self.sessions: set[socket.socket] = set()
        self.had_session = False
        self.terminate_requested = False
        self.started = time.monotonic()
        self.sock_path = protocol.SocketPath(layout.socket)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def _watch_pidfd(self, fd: int, cid: str) -> None:
        self.sel.register(fd, selectors.EVENT_READ, ("exit", cid))

    def become_subreaper(self) -> None:
        """Orphans re-parent to the launcher: a userns container's PID 1 outlives its shim."""
        linux.prctl(userns.PR_SET_CHILD_SUBREAPER, 1)

    def listen(self) -> None:
        try:
            os.unlink(self.layout.socket)
        except FileNotFoundError:
            pass
        old_umask = os.umask(0o177)
        try:
            self.listener.bind(self.sock_path.path)
        finally:
            os.umask(old_umask)
        self.listener.listen(socket.SOMAXCONN)  # a full backlog breaks asyncio's unix connects (EAGAIN)
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, ("accept", None))

    def serve(self) -> None:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda *_: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.sel.register(wake_r, selectors.EVENT_READ, ("signal", None))
        while not self._should_exit():
            self._reap_strays()
            for key, _ in self.sel.select(timeout=self._select_timeout()):
                kind, arg = key.data
                if kind in COLLECTED_EVENTS:
                    self._collected_event(kind, arg)
                elif kind == "accept":
                    self._accept()
                elif kind == "conn":
                    self._read(key.fileobj)  # type: ignore[arg-type]  # "conn" entries are registered with their socket
                elif kind == "exit":
                    self._exited(arg)
                elif kind == "reap":
                    self._reap_helper(key.fd, arg)
                elif kind == "signal":
                    for signum in os.read(wake_r, 64):
                        if signum in (signal.SIGTERM, signal.SIGHUP):
                            _log.info("signal: exiting once no container runs", signal=signum)
                            self.terminate_requested = True
            lightexec.expire(list(self.collected), time.monotonic())
        self.close()

    def _select_timeout(self) -> float:
        """Up to 5 s (shorter while idle with a linger), and never past the nearest exec timeout."""
        timeout = min(5.0, max(self.linger_s, 0.05)) if self.idle_since is not None else 5.0
        deadline = lightexec.next_deadline(list(self.collected))
        return timeout if deadline is None else max(0.0, min(timeout, deadline - time.monotonic()))

    def collect(self, conn: socket.socket, spec: lightexec.ExecSpec) -> None:
        """Run an exec whose output the client collects, in this loop (see lightexec.py); it owns ``conn`` now."""
        self.buffers.pop(conn, None)
        self.sel.unregister(conn)
        c = lightexec.start(spec, self.sup.own_pidns, conn)
        self.collected.add(c)
        self.sel.register(c.pidfd, selectors.EVENT_READ, ("collected-exit", c))
        self.sel.register(c.out_r, selectors.EVENT_READ, ("collected-out", c))  # type: ignore[arg-type]  # a fresh pipe: never None here
        self.sel.register(conn, selectors.EVENT_READ, ("collected-conn", c))

    def _collected_event(self, kind: str, c: lightexec.Collected) -> None:
        if c not in self.collected:
            return  # finished earlier in this same batch of events
        if kind == "collected-out" and c.out_r is not None:
            if not lightexec.read_output(c):  # EOF: out of the selector first, then closed (see read_output)
                self.sel.unregister(c.out_r)
                lightexec.close_output(c)
        elif kind == "collected-conn":
            if c.conn is not None and lightexec.client_gone(c):
                self.sel.unregister(c.conn)  # type: ignore[arg-type]  # set while registered
                c.conn.close()  # type: ignore[union-attr]  # set while registered
                c.conn = None
        elif kind == "collected-exit":
            self._finish_collected(c)

    def _finish_collected(self, c: lightexec.Collected) -> None:
        """The exec's process exited: reap it and answer its client."""
        self.collected.discard(c)
        self.sel.unregister(c.pidfd)
        if c.out_r is not None:
            self.sel.unregister(c.out_r)
        replies = lightexec.finish(c)
        if c.conn is not None:
            self.sel.unregister(c.conn)
            for reply in replies:
                self._send(c.conn, reply)
            c.conn.close()

    def _settle_collected(self, cid: str) -> None:
        """Before reaping a container's PID 1: the kernel ends a pid namespace's init only once every process
        in it is reaped, and the collected execs in it are this launcher's children. Reap those that the
        namespace's end killed first, or waiting for PID 1 would wait for ourselves."""
        deadline = time.monotonic() + SETTLE_S
        while self.collected:
            for c in [c for c in self.collected if lightexec.exited(c)]:
                self._finish_collected(c)
            if self.sup.reapable(cid) or time.monotonic() > deadline:
                return
            time.sleep(0.002)

    def _should_exit(self) -> bool:
        """No container runs, and nobody holds a session (or SIGTERM; or no client ever came); see should_exit."""
        now = time.monotonic()
        running = self.sup.running_count()
        if running or self.sessions:
            self.idle_since = None
        elif self.idle_since is None:
            self.idle_since = now
        idle = None if self.idle_since is None else now - self.idle_since
        return should_exit(running, self.terminate_requested, len(self.sessions), self.had_session, now - self.started, idle, self.linger_s)

    def close(self) -> None:
        for conn in list(self.buffers):
            self.drop(conn)
        self.sel.unregister(self.listener)
        self.listener.close()
        try:
            os.unlink(self.layout.socket)
        except FileNotFoundError:
            pass
        self.sock_path.close()
        self.sup.logs.close()
        self.cgroups.cleanup_parent()
        _log.info("launcher exiting")

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        self.buffers[conn] = bytearray()
        self.sel.register(conn, selectors.EVENT_READ, ("conn", None))

    def drop(self, conn: socket.socket) -> None:
        self.buffers.pop(conn, None)
        self.sessions.discard(conn)
        for waiting in self.waiters.values():
            if conn in waiting:
                waiting.remove(conn)
        try:
            self.sel.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()

    def _read(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.drop(conn)
            return
        buf = self.buffers[conn]
        buf += data
        if len(buf) > protocol.MAX_LINE:
            self._send(conn, protocol.error(ContainerError("request too large")))
            self.drop(conn)
            return
        while conn in self.buffers and b"\n" in buf:
            line, _, rest = bytes(buf).partition(b"\n")
            buf[:] = rest
            self._handle(conn, line)

    def _send(self, conn: socket.socket, message: dict[str, Any]) -> None:
        try:
            conn.setblocking(True)
            conn.settimeout(5.0)
            conn.sendall(protocol.encode(message))
            conn.setblocking(False)
        except OSError:
            self.drop(conn)

    def _handle(self, conn: socket.socket, line: bytes) -> None:
        try:
            req = protocol.decode(line)
            trace.begin(str(req.get("op")))
            reply = requests.dispatch(self, conn, req)
            trace.mark("dispatch")
        except ContainerError as exc:
            reply = protocol.error(exc)
        except Exception as exc:
            _log.exception("request failed", request=loggable(line))
            reply = protocol.error(exc)
        if reply is not None:
            self._send(conn, reply)
            trace.mark("reply")
        trace.end()

    def _reap_strays(self) -> None:
        """Reap zombies nobody else waits for: as a subreaper the launcher inherits orphans (e.g.
        the process of an exec whose helper died). Containers, the log daemon and helpers are left alone."""
        known = {st.pid for st in self.sup.states.values() if st.status == "running"}
        known |= self.sup.logs.pids() | set(self.helpers) | {c.pid for c in self.collected}
        while True:
            try:
                res = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if res is None or res.si_pid in known:
                return
            try:
                os.waitpid(res.si_pid, 0)
            except ChildProcessError:
                return

    def _reap_helper(self, fd: int, pid: int) -> None:
        self.helpers.discard(pid)
        self.sel.unregister(fd)
        os.close(fd)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass

    def _exited(self, cid: str) -> None:
        trace.begin("exit")
        self._settle_collected(cid)
        st = self.sup.on_exit(cid)
        reply = protocol.ok(info=st.info().to_dict())
        for conn in self.waiters.pop(cid, []):
            self._send(conn, reply)
        trace.mark("reply")
        trace.end()
