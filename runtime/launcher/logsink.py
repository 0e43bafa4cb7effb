"""The launcher's side of the log daemon (logshim.py): start it, hand it each container's pipes, wait for
a container's log to be complete.

The daemon is forked on the first container and again if it dies. The launcher keeps its own copy of
each running container's read ends until that container's log is complete, so a daemon that died can
be replaced and given every live container again (a line it held half-written is lost; the containers
never see a broken pipe); it is noticed on the next ``add`` or ``wait``, until when a chatty container may
block on a full pipe. The cost is two fds a running container in the launcher (its soft RLIMIT_NOFILE is
the one it was started with: the systemd units set 1048576; a shell's 1024 holds ~300 running
containers); the daemon raises its own soft limit to the hard one. ``wait`` blocks, as the launcher's
exit handling does: it reads the daemon's ``done <id>`` messages until the one it waits for, or gives
up after ``timeout``.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import time

from shoal.runtime.launcher import jsonlog, logshim

_log = jsonlog.get(__name__)


class LogSink:
    """The log daemon of one launcher and the containers it is writing logs for."""

    def __init__(self) -> None:
        self.pid = 0
        self._ctrl: socket.socket | None = None
        self._live: dict[str, tuple[int, int, str, int, int]] = {}  # id -> (our copies of its read ends, log path, rotation)
        self._done: set[str] = set()

    def pids(self) -> set[int]:
        return {self.pid} if self.pid else set()

    def add(self, cid: str, out_r: int, err_r: int, path: str, max_size: int = 0, max_files: int = 0) -> None:
        """Have the daemon write ``cid``'s two pipes to ``path`` (the caller keeps and closes its fds), rotated
        at ``max_size`` bytes keeping ``max_files`` files (0: the daemon's defaults)."""
        mine = (os.dup(out_r), os.dup(err_r), path, max_size, max_files)  # dup: close-on-exec, as every fd the launcher opens
        self._live[cid] = mine
        self._done.discard(cid)
        try:
            self._send(cid, mine)
        except OSError:  # the daemon died: a new one gets every live container, this one included
            self._restart()

    def wait(self, cid: str, timeout: float = 2.0) -> None:
        """Until ``cid``'s log is complete (both pipes at EOF, every line written), at most ``timeout``."""
        if cid not in self._live:
            return
        deadline = time.monotonic() + timeout
        try:
            while cid not in self._done and self._ctrl is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._ctrl], [], [], left)[0]:
                    _log.warning("log not complete in time", container=cid)
                    break
                msg = self._ctrl.recv(4096)
                if not msg:  # the daemon died while writing it: the next one writes the rest
                    self._restart()
                elif msg.startswith(b"done ") and msg[5:].decode() in self._live:
                    self._done.add(msg[5:].decode())
        except OSError as exc:  # no daemon could be started again: the exit must still be recorded
            _log.warning("log daemon not restarted", container=cid, error=str(exc))
        finally:
            self._forget(cid)

    def close(self) -> None:
        """The launcher is exiting: the daemon finishes the containers it has and then exits too."""
        for cid in list(self._live):
            self._forget(cid)
        if self._ctrl is not None:
            self._ctrl.close()
            self._ctrl = None

    def _forget(self, cid: str) -> None:
        self._done.discard(cid)
        entry = self._live.pop(cid, None)
        if entry is not None:
            os.close(entry[0])
            os.close(entry[1])

    def _send(self, cid: str, entry: tuple[int, int, str, int, int]) -> None:
        if self._ctrl is None:
            self._start()
        assert self._ctrl is not None
        message = json.dumps({"id": cid, "path": entry[2], "max_size": entry[3], "max_files": entry[4]}).encode()
        socket.send_fds(self._ctrl, [message], [entry[0], entry[1]])

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            ours.close()
            logshim.run_daemon(theirs)
        theirs.close()
        self._ctrl, self.pid = ours, pid

    def _restart(self) -> None:
        """Replace a daemon that died and give the new one every container whose log is not complete."""
        _log.warning("log daemon gone: starting another", pid=self.pid)
        if self._ctrl is not None:
            self._ctrl.close()
            self._ctrl = None
        if self.pid:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, os.WNOHANG)
            self.pid = 0
        self._start()
        for cid, entry in self._live.items():
            if cid not in self._done:
                self._send(cid, entry)
