"""What ``shoal run`` does once its flags are read, without click: name, create, start, follow, remove.

Shared by the click command (run.py, which adds ``--network`` through the node's agent) and the fast
``shoal run`` (fastrun.py), so both run a container the same way. In the foreground the container's
output is streamed from its log (stdout to stdout, stderr to stderr) and the exit code is the
container's; Ctrl-C is passed on as SIGINT. ``detach`` prints the id and returns. ``remove`` deletes
the container once it has exited, or when it could not start.
"""

from __future__ import annotations

import select
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shoal.cli.local import name_of, new_id, new_name
from shoal.cli.logfollow import POLL_S, LogTail
from shoal.cli.runflags import build_config

if TYPE_CHECKING:
    from shoal.runtime import ContainerConfig
    from shoal.runtime.client.sync import SyncRuntime


class Refused(Exception):
    """The run cannot go ahead (a name in use): the message is the user's ``Error:`` line."""


class Network:
    """How a container joins a cluster network (run.py's ``--network``): ``join(cfg)`` before it is
    created (returns the attachment), ``started(attachment)`` once it runs, ``leave(attachment)`` at the end."""

    def __init__(self, join: Callable[[ContainerConfig], str], started: Callable[[str], Any], leave: Callable[[str], None]) -> None:
        self.join, self.started, self.leave = join, started, leave


def run_here(rt: SyncRuntime, image: str, command: tuple[str, ...], o: dict[str, Any], name: str | None,
             remove: bool, detach: bool, environ: dict[str, str], network: Network | None = None) -> int:
    """Run ``image`` with the flags ``o`` on the open runtime ``rt``; the exit status for the command."""
    taken = {name_of(c) for c in rt.list()}
    if name is not None and name in taken:
        raise Refused(f'Conflict. The container name "{name}" is already in use')
    name = name or new_name(taken)
    cfg = build_config(image, command, o, new_id(), name, environ)
    joined = network.join(cfg) if network is not None else None
    try:
        info = rt.create(cfg)
        try:
            rt.start(info.id)
        except BaseException:
            if remove:
                rt.delete(info.id, force=True)
            raise
        if network is not None and joined is not None:
            network.started(joined)
    except BaseException:
        if network is not None and joined is not None:
            network.leave(joined)
        raise
    if detach:
        sys.stdout.write(info.id + "\n")
        sys.stdout.flush()
        return 0
    code = attach(rt, info.id, info.log_path)
    if remove:
        rt.delete(info.id, force=True)
    if network is not None and joined is not None:
        network.leave(joined)
    return code


def attach(rt: SyncRuntime, cid: str, log_path: str) -> int:
    """Print the log until the container exits; Ctrl-C becomes SIGINT to the container.

    The exit arrives as the reply on a ``wait`` connection: the log is read whenever that reply has not
    come within POLL_S, and once more after it, so a short container costs no poll interval at all.
    """
    tail = LogTail(log_path)
    conn = rt.begin_wait(cid)
    previous = signal.signal(signal.SIGINT, lambda *_: _signal(rt, cid, signal.SIGINT))
    try:
        while not select.select([conn], [], [], POLL_S)[0]:
            tail.pump()
        info = rt.end_wait(conn)
    finally:
        signal.signal(signal.SIGINT, previous)
        conn.close()
    tail.pump()
    if info.oom_killed:
        sys.stderr.write("container was OOM-killed\n")
        sys.stderr.flush()
    return info.exit_code if info.exit_code is not None else 255


def _signal(rt: SyncRuntime, cid: str, sig: int) -> None:
    try:
        rt.kill(cid, sig, fresh=True)  # the session may be mid-call: a connection of its own
    except Exception:  # noqa: BLE001 - it may have exited meanwhile
        pass
