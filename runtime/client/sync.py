"""``SyncRuntime``: the blocking client of the launcher, for a short-lived process such as ``shoal run``.

``Runtime`` (runtime.py) is asyncio, as the agent needs; a CLI command that starts one container,
waits for it and removes it gains nothing from an event loop and pays for importing asyncio (with
ssl, concurrent.futures and logging) on every invocation. This client speaks the same protocol
(JSON lines, see shoal.runtime.protocol) with plain blocking sockets and imports nothing beyond the
standard library's socket and select: the launcher is started (spawn.py, imported only then) only
when none serves the state dir.

Requests go on the session connection (the ``hello`` one, which keeps the launcher alive while this
client is open), one at a time; ``begin_wait`` sends a ``wait`` on a connection of its own, whose
reply the caller polls (``select``) while it follows the container's log; ``call(..., fresh=True)``
uses a one-off connection, for a call made from a signal handler while the session may be mid-call.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from typing import Any

from shoal.runtime import protocol
from shoal.runtime.config import STATUS_RUNNING, ContainerConfig, ContainerInfo
from shoal.runtime.errors import ContainerError, from_wire
from shoal.runtime.layout import Layout

LAUNCHER_START_TIMEOUT_S = float(os.environ.get("SHOAL_LAUNCHER_START_TIMEOUT_S") or 15.0)  # as spawn.py


class SyncRuntime:
    """Containers of one state directory, kept apart from other runtimes by ``cgroup_parent`` (as Runtime)."""

    def __init__(
        self, state_dir: str, cgroup_parent: str = "shoal", image_root: str | None = None, linger_s: float = 0.0
    ) -> None:
        self.layout = Layout(state_dir)
        self.cgroup_parent = cgroup_parent
        self.image_root = os.path.abspath(image_root) if image_root else self.layout.default_images
        self.linger_s = linger_s
        self.launcher_pid: int | None = None
        self._sock: protocol.SocketPath | None = None
        self._session: socket.socket | None = None
        self._proc: Any = None  # the launcher this client started (subprocess.Popen), if any

    def open(self) -> None:
        """Connect to the launcher serving this state dir, starting one if none does (as Runtime.open)."""
        if self._session is not None:
            return
        self.layout.ensure()
        self._sock = self._sock or protocol.SocketPath(self.layout.socket)
        deadline = time.monotonic() + LAUNCHER_START_TIMEOUT_S
        while True:
            try:
                conn = self._connect()
            except OSError:
                conn = None
            if conn is not None:
                try:
                    reply = exchange(conn, {"op": "hello"})
                except (OSError, ConnectionError):
                    conn.close()
                else:
                    self._session, self.launcher_pid = conn, int(reply["pid"])
                    return
            self._spawn(deadline)

    def _spawn(self, deadline: float) -> None:
        from shoal.runtime.client import spawn  # subprocess and logging: only when no launcher runs

        status, self._proc = spawn.spawn(self.layout, self.cgroup_parent, self.image_root, self.linger_s)
        if status.startswith("error"):
            raise ContainerError(f"launcher failed to start: {status[6:]} (see {self.layout.launcher_log})")
        if time.monotonic() > deadline:
            raise ContainerError(f"launcher did not come up within {LAUNCHER_START_TIMEOUT_S}s: {status}")
        if status == "busy":  # another launcher holds the lock and is (re)binding: retry shortly
            time.sleep(0.05)

    def close(self) -> None:
        """End this client's session; never kills containers (the launcher may exit: see Runtime.close)."""
        if self._sock is None:
            return
        reply: dict[str, Any] = {"exiting": True}
        if self._session is not None:
            session, self._session = self._session, None
            try:
                reply = exchange(session, {"op": "shutdown"})
            except (OSError, ConnectionError, ContainerError):
                pass  # the launcher is gone
            finally:
                session.close()
        if reply.get("exiting") and (self._proc is not None or self.launcher_pid is not None):
            from shoal.runtime.client import spawn

            if spawn.await_exit(self._proc, self.launcher_pid):
                self._proc = None
        self._sock.close()
        self._sock = None

    def __enter__(self) -> SyncRuntime:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ------------------------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        if self._sock is None:
            raise ContainerError("runtime is not open")
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            conn.connect(self._sock.path)
        except BaseException:
            conn.close()
            raise
        return conn

    def call(self, request: dict[str, Any], fresh: bool = False) -> dict[str, Any]:
        """One request and its reply: on the session, or on a one-off connection (``fresh``)."""
        if not fresh and self._session is not None:
            return exchange(self._session, request)
        conn = self._connect()
        try:
            return exchange(conn, request)
        finally:
            conn.close()

    def create(self, config: ContainerConfig) -> ContainerInfo:
        """As Runtime.create: validated here, once; the launcher gets the ContainerSpec."""
        from shoal.runtime.spec import validate

        return ContainerInfo.from_dict(self.call({"op": "create", "spec": validate(config).to_dict()})["info"])

    def start(self, container_id: str) -> ContainerInfo:
        return ContainerInfo.from_dict(self.call({"op": "start", "id": container_id})["info"])

    def list(self) -> list[ContainerInfo]:
        return [ContainerInfo.from_dict(c) for c in self.call({"op": "list"})["containers"]]

    def inspect(self, container_id: str) -> ContainerInfo:
        return ContainerInfo.from_dict(self.call({"op": "inspect", "id": container_id})["info"])

    def kill(self, container_id: str, sig: int = signal.SIGTERM, fresh: bool = False) -> None:
        self.call({"op": "kill", "id": container_id, "signal": int(sig)}, fresh=fresh)

    def wait(self, container_id: str) -> ContainerInfo:
        conn = self.begin_wait(container_id)
        try:
            return self.end_wait(conn)
        finally:
            conn.close()

    def begin_wait(self, container_id: str) -> socket.socket:
        """A connection whose one reply (``end_wait``) comes when the container has exited."""
        conn = self._connect()
        try:
            conn.sendall(protocol.encode({"op": "wait", "id": container_id}))
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def end_wait(conn: socket.socket) -> ContainerInfo:
        return ContainerInfo.from_dict(read_reply(conn)["info"])

    def delete(self, container_id: str, force: bool = False) -> None:
        """As Runtime.delete: ``force`` SIGKILLs a running container (its whole cgroup) first."""
        if force and self.inspect(container_id).status == STATUS_RUNNING:
            try:
                self.call({"op": "kill", "id": container_id, "signal": int(signal.SIGKILL), "all": True})
            except ContainerError:
                pass
            self.wait(container_id)
        self.call({"op": "delete", "id": container_id})


def exchange(conn: socket.socket, request: dict[str, Any]) -> dict[str, Any]:
    """Send one request and read its reply; raises the launcher's error, or on a closed connection."""
    conn.sendall(protocol.encode(request))
    return read_reply(conn)


def read_reply(conn: socket.socket) -> dict[str, Any]:
    """One reply line (the protocol has one outstanding request per connection, so nothing follows it)."""
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionResetError("launcher closed the connection")
        buf += chunk
        if len(buf) > protocol.MAX_LINE:
            raise ContainerError("reply too large")
    reply = protocol.decode(buf)
    if not reply.get("ok"):
        raise from_wire(reply.get("error") or {})
    return reply
