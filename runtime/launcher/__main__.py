"""The launcher process' entry point: ``python -E -s -m shoal.runtime.launcher --state-dir D ...``.

``Runtime.open()`` starts it (see client/spawn.py) with a pipe on ``--ready-fd``: one line,
``ready <pid>``, ``busy`` (another launcher holds this state dir's lock; the client connects to
that one) or ``error <reason>``, then the pipe is closed.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys

from shoal.runtime.launcher import jsonlog
from shoal.runtime.launcher.server import Launcher
from shoal.runtime.layout import Layout

_log = jsonlog.get("shoal.runtime.launcher")


def _lock(layout: Layout) -> int | None:
    fd = os.open(layout.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shoal.runtime.launcher")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--cgroup-parent", default="shoal")
    parser.add_argument("--ready-fd", type=int, default=-1)
    parser.add_argument("--image-root", default=None)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--linger", type=float, default=0.0, help="seconds to stay once idle (no session, no container)")
    args = parser.parse_args(argv)
    jsonlog.setup(args.log_level)
    layout = Layout(args.state_dir)
    layout.ensure()

    def ready(text: str) -> None:
        if args.ready_fd >= 0:
            os.write(args.ready_fd, text.encode() + b"\n")
            os.close(args.ready_fd)

    lock_fd = _lock(layout)
    if lock_fd is None:
        ready("busy")  # another launcher owns this state dir; the client connects to it
        return 0
    try:
        launcher = Launcher(layout, args.cgroup_parent, args.image_root, args.linger)
        launcher.become_subreaper()
        launcher.listen()
        launcher.sup.load()
    except BaseException as exc:
        _log.exception("launcher failed to start")
        ready(f"error {type(exc).__name__}: {exc}")
        return 1
    _log.info(
        "launcher ready", pid=os.getpid(), state_dir=layout.root, cgroup_version=launcher.cgroups.version
    )
    ready(f"ready {os.getpid()}")
    launcher.serve()
    os.close(lock_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
