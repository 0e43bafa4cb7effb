"""The per-container log shim: writes the container's output as timestamped JSON lines, rotated by size.

The container's stdout and stderr are two pipes. Right after forking the container (while its PID 1
sets itself up), the launcher forks a *shim* that owns their read ends: it splits the bytes into
lines and appends docker's json-file records (``{"log": "line\\n", "stream": "stdout", "time":
"2024-...Z"}``) to ``ctr.log``. When the file passes ``max_size`` it is renamed to ``ctr.log.1``
(older ones shift up to ``max_files - 1``). The shim is its own process so the logs keep flowing
while the launcher restarts; it exits when every writer is gone (the container and its descendants
have exited). The readers are in ``shoal.runtime.logs``, usable from any process on the node.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
from datetime import UTC, datetime
from typing import NoReturn

from shoal.runtime.launcher import procutil
from shoal.runtime.logs import MAX_FILES, MAX_SIZE

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


def run_shim(
    out_r: int, err_r: int, path: str, max_size: int = MAX_SIZE, max_files: int = MAX_FILES
) -> NoReturn:
    """The shim process: copy both pipes into the log until both reach EOF, then exit."""
    code = 0
    try:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # outlives a launcher being stopped
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.set_wakeup_fd(-1)
        procutil.close_fds_except({out_r, err_r})
        writer = _Writer(path, max_size, max_files)
        streams = {out_r: ("stdout", bytearray()), err_r: ("stderr", bytearray())}
        while streams:
            ready, _, _ = select.select(list(streams), [], [])
            for fd in ready:
                name, buf = streams[fd]
                data = os.read(fd, 65536)
                if not data:
                    if buf:
                        writer.write(name, bytes(buf))
                    del streams[fd]
                    os.close(fd)
                    continue
                buf += data
                while True:
                    nl = buf.find(b"\n")
                    if nl < 0 and len(buf) < MAX_LINE:
                        break
                    cut = nl + 1 if 0 <= nl < MAX_LINE else MAX_LINE
                    writer.write(name, bytes(buf[:cut]))
                    del buf[:cut]
    except BaseException:  # noqa: BLE001 - a shim never raises into launcher code
        code = 1
    os._exit(code)


def start_shim(out_r: int, err_r: int, path: str) -> int:
    """Fork the shim that owns the container's output pipes; its pid."""
    pid = os.fork()
    if pid == 0:
        run_shim(out_r, err_r, path)
    return pid


def wait_shim(pid: int, timeout: float = 2.0) -> None:
    """Let the shim write the container's last lines (it exits at EOF), then reap it."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        fd = None
    if fd is not None:
        try:
            select.select([fd], [], [], timeout)
        finally:
            os.close(fd)
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
