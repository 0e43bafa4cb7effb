"""The log daemon: writes every container's output as timestamped JSON lines, rotated by size.

A container's stdout and stderr are two pipes. Right after forking the container's PID 1, the launcher
hands their read ends to its *log daemon* over a unix socket (SCM_RIGHTS; see logsink.py), which
splits the bytes into lines and appends docker's json-file records (``{"log": "line\\n", "stream":
"stdout", "time": "2024-...Z"}``) to the container's ``ctr.log``. When the file passes ``max_size`` it is
renamed to ``ctr.log.1`` (older ones shift up to ``max_files - 1``); both limits come with each container
(json-file's ``max-size``/``max-file``), the daemon's own are the defaults. When both pipes of a container
reach EOF (it and its descendants have exited) its log is complete and the daemon says ``done <id>``.

One daemon serves all of a launcher's containers: it used to be one shim process forked per container,
a second fork of the launcher on every start (the fork and the copy-on-write faults of two processes
running Python were about a fifth of a container's start-to-exit CPU). The daemon is its own process
so the logs keep flowing while the launcher restarts: it exits once the launcher has gone and the last
of its containers has closed its pipes. The readers are in ``shoal.runtime.logs``, usable from any
process on the node.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import signal
import socket
import time
from datetime import UTC, datetime
from typing import NoReturn

from shoal.runtime.launcher import procutil
from shoal.runtime.logs import MAX_FILES, MAX_SIZE

COMM = "shoal-logd"
"""The daemon's process name (/proc/PID/comm)."""
MAX_LINE = 16 << 10
"""A line longer than this is written in pieces (docker does the same at 16 KiB)."""


def _stamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


class _Writer:
    def __init__(self, path: str, max_size: int, max_files: int) -> None:
        self.path, self.max_size, self.max_files = path, max_size, max_files
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.size = os.fstat(self.fd).st_size

    def write(self, stream: str, line: bytes) -> None:
        rec = json.dumps(
            {"log": line.decode("utf-8", "replace"), "stream": stream, "time": _stamp(time.time())}
        )
        data = rec.encode() + b"\n"
        if self.size and self.size + len(data) > self.max_size:
            self._rotate()
        os.write(self.fd, data)
        self.size += len(data)

    def _rotate(self) -> None:
        os.close(self.fd)
        for i in range(self.max_files - 1, 0, -1):
            older = f"{self.path}.{i}"
            newer = self.path if i == 1 else f"{self.path}.{i - 1}"
            if os.path.exists(newer):
                os.replace(newer, older)
        self.fd = os.open(
            self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640
        )
        self.size = 0


class _Output:
    """One container's two pipes and its log file, inside the daemon."""

    def __init__(self, cid: str, path: str, out_r: int, err_r: int, max_size: int, max_files: int) -> None:
        self.cid = cid
        self.writer = _Writer(path, max_size, max_files)
        self.streams: dict[int, tuple[str, bytearray]] = {out_r: ("stdout", bytearray()), err_r: ("stderr", bytearray())}

    def pump(self, fd: int) -> bool:
        """Copy what ``fd`` has into the log; False once the pipe reached EOF (and is closed)."""
        name, buf = self.streams[fd]
        data = os.read(fd, 65536)
        if not data:
            if buf:
                self.writer.write(name, bytes(buf))
            del self.streams[fd]
            os.close(fd)
            return False
        buf += data
        while True:
            nl = buf.find(b"\n")
            if nl < 0 and len(buf) < MAX_LINE:
                return True
            cut = nl + 1 if 0 <= nl < MAX_LINE else MAX_LINE
            self.writer.write(name, bytes(buf[:cut]))
            del buf[:cut]

    def close(self) -> None:
        for fd in self.streams:
            os.close(fd)
        self.streams.clear()
        os.close(self.writer.fd)


def run_daemon(ctrl: socket.socket, max_size: int = MAX_SIZE, max_files: int = MAX_FILES) -> NoReturn:
    """The daemon process: serve every container the launcher hands over until none is left and the launcher
    has gone (``ctrl`` at EOF); then exit. A container whose log cannot be written is dropped alone."""
    code = 0
    try:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # outlives a launcher being stopped
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.set_wakeup_fd(-1)
        procutil.close_fds_except({ctrl.fileno()})
        with contextlib.suppress(OSError), open("/proc/self/comm", "w") as comm:
            comm.write(COMM)  # `ps` tells it from the launcher it was forked from
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # three fds a container: not capped at 1024
        by_fd: dict[int, _Output] = {}
        listening = True
        while listening or by_fd:
            ready, _, _ = select.select([ctrl.fileno()] * listening + list(by_fd), [], [])
            for fd in ready:
                if fd == ctrl.fileno():
                    listening = _accept(ctrl, by_fd, max_size, max_files)
                elif fd in by_fd:
                    _pump(ctrl, by_fd, fd, listening)
    except BaseException:  # noqa: BLE001 - the daemon never raises into launcher code
        code = 1
    os._exit(code)


def _accept(ctrl: socket.socket, by_fd: dict[int, _Output], max_size: int, max_files: int) -> bool:
    """Take one container's pipes from the launcher; False when the launcher has gone."""
    msg, fds, _, _ = socket.recv_fds(ctrl, 4096, 2)
    if not msg:
        for fd in fds:
            os.close(fd)
        return False
    try:
        request = json.loads(msg)
        size, files = int(request.get("max_size") or max_size), int(request.get("max_files") or max_files)
        out = _Output(str(request["id"]), str(request["path"]), fds[0], fds[1], size, files)
    except (ValueError, KeyError, IndexError, OSError):
        for fd in fds:
            os.close(fd)
        return True
    for fd in fds:
        by_fd[fd] = out
    return True


def _pump(ctrl: socket.socket, by_fd: dict[int, _Output], fd: int, listening: bool) -> None:
    """Copy one pipe's data; when a container's last pipe closes, its log is complete: tell the launcher."""
    out = by_fd[fd]
    try:
        if out.pump(fd):
            return
        del by_fd[fd]
        if out.streams:
            return
    except OSError:  # the log cannot be written (disk full, dir gone): this container only
        for other in (fd, *out.streams):
            by_fd.pop(other, None)
    out.close()
    if listening:
        with contextlib.suppress(OSError):
            ctrl.send(b"done " + out.cid.encode())
