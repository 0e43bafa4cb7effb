"""The launcher's operations: one request off the socket to a reply (see shoal.runtime.protocol).

Container operations go to the supervisor, image and volume ones to storeops; ``wait`` parks the
connection until the container exits, ``exec`` hands the connection to a forked helper, ``hello``
and ``shutdown`` open and close a client's session (they decide the launcher's lifetime).
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
from typing import TYPE_CHECKING, Any

from shoal.runtime import files, protocol
from shoal.runtime.errors import ContainerError
from shoal.runtime.launcher import storeops
from shoal.runtime.launcher.child import exec as execproc
from shoal.runtime.spec import ContainerSpec

if TYPE_CHECKING:
    from shoal.runtime.launcher.server import Launcher


def dispatch(server: Launcher, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any] | None:
    """The reply to ``req``, or None when it comes later (wait) or from elsewhere (exec)."""
    op = req.get("op")
    sup = server.sup
    cid = str(req.get("id", ""))
    if op in _SESSION:
        return _SESSION[op](server, conn)
    if op == "create":
        return protocol.ok(info=sup.create(ContainerSpec.from_dict(req.get("spec") or {})).to_dict())
    if op == "start":
        return protocol.ok(info=sup.start(cid, files.from_wire(req.get("files"))).to_dict())
    if op == "kill":
        sup.kill(cid, int(req.get("signal", signal.SIGTERM)), bool(req.get("all", False)))
        return protocol.ok()
    if op == "wait":
        st = sup.get(cid)
        if st.status == "running":
            server.waiters.setdefault(cid, []).append(conn)
            return None
        return protocol.ok(info=st.info().to_dict())
    if op == "inspect":
        st = sup.get(cid)
        return protocol.ok(info=st.info().to_dict(), stop_grace_s=st.spec.stop_grace_s, stop_signal=st.spec.stop_signal)
    if op == "list":
        return protocol.ok(containers=[s.info().to_dict() for _, s in sorted(sup.states.items())])
    if op == "delete":
        sup.delete(cid)
        return protocol.ok()
    if op == "stats":
        sup.get(cid)
        return protocol.ok(stats=sup.cgroups.stats(cid))
    if op in storeops.OPS:
        return protocol.ok(**storeops.handle(sup, op, req))
    if op == "exec":
        _exec(server, conn, cid, req)
        return None
    raise ContainerError(f"unknown operation {op!r}")


def _hello(server: Launcher, conn: socket.socket) -> dict[str, Any]:
    server.sessions.add(conn)
    server.had_session = True
    server.terminate_requested = False
    return protocol.ok(pid=os.getpid(), cgroup_version=server.cgroups.version)


def _shutdown(server: Launcher, conn: socket.socket) -> dict[str, Any]:
    server.sessions.discard(conn)  # this client is going away
    running = server.sup.running_count()
    return protocol.ok(exiting=not running and not server.sessions and server.linger_s <= 0, running=running)


_SESSION = {"hello": _hello, "shutdown": _shutdown}


def _exec(server: Launcher, conn: socket.socket, cid: str, req: dict[str, Any]) -> None:
    """Fork an exec helper that takes over this connection (see child/exec.py); an exec the client only
    collects (``collect``, not interactive) runs in the launcher's own loop instead (lightexec.py)."""
    timeout = req.get("timeout")
    spec = server.sup.exec_spec(
        cid,
        [str(a) for a in req.get("args") or []],
        [str(e) for e in req.get("env") or []],
        None if timeout is None else float(timeout),
        bool(req.get("interactive", False)),
    )
    if req.get("collect") and not spec.interactive:
        server.collect(conn, spec)
        return
    pid = os.fork()
    if pid == 0:
        execproc.run_helper(spec, conn.fileno())
    server.helpers.add(pid)
    server.sel.register(os.pidfd_open(pid), selectors.EVENT_READ, ("reap", pid))
    server.drop(conn)  # the helper holds its own copy of the connection
