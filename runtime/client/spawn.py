"""Starting the launcher process for a state dir, and waiting for it to go away.

The client never forks containers itself (the agent is multi-threaded and large); it starts the
launcher once with ``subprocess`` (posix_spawn-fast, in a new session so a Ctrl-C at the agent's
terminal does not reach it) and reads one status line from a pipe: ``ready <pid>``, ``busy``
(another launcher holds the state dir; connect to that one) or ``error <reason>``. Blocking calls:
the Runtime runs them in a thread.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import time

from shoal import log
from shoal.runtime.layout import Layout

LAUNCHER_START_TIMEOUT_S = float(os.environ.get("SHOAL_LAUNCHER_START_TIMEOUT_S") or 15.0)
"""How long a launcher may take to come up (its Python start-up); a slow host (an emulated VM) sets more."""
_log = log.get(__name__)


def spawn(layout: Layout, cgroup_parent: str, image_root: str, linger_s: float = 0.0) -> tuple[str, subprocess.Popen[bytes]]:
    """Start a launcher; its status line and process (``error ...`` if it died before ready)."""
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    cmd = [
        sys.executable, "-E", "-s", "-m", "shoal.runtime.launcher",
        "--state-dir", layout.root, "--cgroup-parent", cgroup_parent, "--ready-fd", str(ready_w),
        "--image-root", image_root, *(["--linger", f"{linger_s:g}"] if linger_s > 0 else []),
    ]  # fmt: skip
    try:
        with open(layout.launcher_log, "ab") as log_file:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_file,
                pass_fds=(ready_w,), cwd="/", start_new_session=True, close_fds=True,
            )  # fmt: skip
    finally:
        os.close(ready_w)
    try:
        status = _read_status(ready_r)
    finally:
        os.close(ready_r)
    if not status.startswith("ready"):
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        status = status or f"error exited with status {proc.poll()} before it was ready"
    return status, proc


def _read_status(fd: int) -> str:
    text = b""
    deadline = time.monotonic() + LAUNCHER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
        chunk = os.read(fd, 4096) if ready else b""
        if not chunk:
            break
        text += chunk
    return text.decode("utf-8", "replace").strip()


def await_exit(proc: subprocess.Popen[bytes] | None, launcher_pid: int | None) -> bool:
    """Wait (bounded) for the launcher to go away; True if ``proc`` (ours) was reaped."""
    if proc is not None:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _log.warning("launcher did not exit after shutdown", pid=proc.pid)
            return False
        return True
    if launcher_pid is None:
        return False
    try:
        fd = os.pidfd_open(launcher_pid)
    except OSError:
        return False  # already gone
    try:
        select.select([fd], [], [], 10)
    finally:
        os.close(fd)
    return False
