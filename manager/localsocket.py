"""The control API's unix socket: whoever can connect to it is an admin, so it is never open to others.

The socket is bound under a restrictive umask (0117: the socket is born 0660, never world-writable
even for an instant), its directory is created 0750 when the manager creates it, and an optional
group (``--socket-group``) owns both, so members of that group can use the CLI without root.
A stale socket left by a killed manager is removed; a live one means another manager runs there.
"""

from __future__ import annotations

import contextlib
import grp
import os
import socket
from collections.abc import Iterator
from pathlib import Path

SOCKET_UMASK = 0o117  # 0777 & ~0117 = 0660
DIR_MODE = 0o750


class SocketError(Exception):
    """The socket cannot be set up; the message names the path or group."""


def in_use(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def group_id(name: str) -> int:
    """The gid of ``name`` (a group name or number); SocketError naming it when there is none."""
    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise SocketError(f"--socket-group {name!r}: no such group") from None


def prepare(path: str, group: str = "") -> None:
    """Make the directory (0750, in ``group``) and clear a stale socket; SocketError if one is live."""
    parent = Path(path).parent
    if not parent.exists():
        parent.mkdir(mode=DIR_MODE, parents=True)
        os.chmod(parent, DIR_MODE)  # mkdir's mode is filtered by the umask
        if group:
            os.chown(parent, -1, group_id(group))
    if os.path.exists(path):
        if in_use(path):
            raise SocketError(f"another manager is listening on {path}")
        os.unlink(path)


@contextlib.contextmanager
def restrictive_umask() -> Iterator[None]:
    """Bind inside this: the socket file is created 0660 at once (the umask is process-wide: keep it short)."""
    old = os.umask(SOCKET_UMASK)
    try:
        yield
    finally:
        os.umask(old)


def finish(path: str, group: str = "") -> None:
    """After the bind: 0660 (whatever the umask was) and the group, if one was asked for."""
    if group:
        os.chown(path, -1, group_id(group))
    os.chmod(path, 0o660)


def remove(path: str) -> None:
    """Remove the socket at exit unless another manager took it over."""
    if path and os.path.exists(path) and not in_use(path):
        os.unlink(path)
