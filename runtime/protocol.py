"""The wire format between the agent-side ``Runtime`` and the launcher: JSON lines on a unix socket.

One request per line, ``{"op": "...", ...}``; one reply per line, ``{"ok": true, ...}`` or
``{"ok": false, "error": {"type": "StartError", "message": "..."}}``. A ``wait`` reply comes
only when the container exits, so the client uses one connection per call. Both ends import this
module, which has no dependencies beyond the standard library.
"""

from __future__ import annotations

import json
import os
from typing import Any

from shoal.runtime.errors import to_wire

MAX_LINE = 24 << 20
"""Requests and replies larger than this are refused (a config is a few KiB; a start request carries its
files, at most 16 MiB in all, base64-encoded: see files.MAX_TOTAL)."""
SUN_PATH_MAX = 107
EXEC_OUTPUT_CAP = 64 * 1024
"""A collected exec (``Runtime.exec``) keeps the last this many bytes of its output."""

OPS = frozenset({"hello", "create", "start", "kill", "wait", "inspect", "list", "delete", "shutdown", "exec"})
"""Container operations; the image and volume ones are listed in storeops.OPS."""


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def error(exc: BaseException) -> dict[str, Any]:
    return {"ok": False, "error": to_wire(exc)}


def decode(line: bytes) -> dict[str, Any]:
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("a message must be a JSON object")
    return message


class SocketPath:
    """A unix socket path usable with bind/connect even when longer than sun_path allows.

    Long paths (pytest's tmp dirs get long) go through ``/proc/self/fd/<dirfd>/<name>``, which
    resolves in the calling process; the directory fd is kept open for the object's lifetime.
    """

    def __init__(self, path: str) -> None:
        self.real = path
        self._dirfd: int | None = None
        if len(os.fsencode(path)) <= SUN_PATH_MAX:
            self.path = path
        else:
            self._dirfd = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            self.path = f"/proc/self/fd/{self._dirfd}/{os.path.basename(path)}"

    def close(self) -> None:
        if self._dirfd is not None:
            os.close(self._dirfd)
            self._dirfd = None
