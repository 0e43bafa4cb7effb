"""Files handed to a container at start, kept in memory only: what the worker uses for secrets and configs.

A ``ContainerFile`` is bytes plus where they appear in the container (an absolute path, owner, mode).
They travel with the ``start`` request, never with ``create``: the create spec is persisted in the
state dir, a start request is not. The launcher keeps them only while it forks the container, whose
PID 1 writes them into a tmpfs that exists only in the container's mount namespace and bind-mounts
each one, read-only, at its path (see launcher/child/files.py). Nothing reaches a disk, and the files
go when the container's last process exits. ``repr`` never shows the data, so a log line cannot.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from shoal.runtime.errors import ConfigError

RESERVED = ("/", "/proc", "/sys", "/dev")
MAX_TOTAL = 16 << 20
"""All files of one container together (a secret is < 500 KiB; a container may have many)."""


@dataclass(frozen=True)
class ContainerFile:
    target: str
    """Absolute path inside the container."""
    data: bytes = field(repr=False)
    uid: int = 0
    gid: int = 0
    mode: int = 0o444


def validate(files: list[ContainerFile]) -> list[ContainerFile]:
    """Normalized targets; ConfigError for a relative, reserved or repeated target, or a bad owner/mode."""
    out: list[ContainerFile] = []
    seen: set[str] = set()
    total = 0
    for f in files:
        if not isinstance(f.target, str) or not f.target.startswith("/") or "\x00" in f.target:
            raise ConfigError(f"invalid file target {f.target!r}: must be an absolute path")
        target = os.path.normpath(f.target)
        if target in RESERVED or any(target.startswith(r + "/") for r in RESERVED[1:]):
            raise ConfigError(f"invalid file target {target!r}: reserved")
        if target in seen:
            raise ConfigError(f"file target {target} given twice")
        if not isinstance(f.data, bytes):
            raise ConfigError(f"file {target}: data must be bytes")
        for what, v in (("uid", f.uid), ("gid", f.gid)):
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 0xFFFFFFFF:
                raise ConfigError(f"file {target}: invalid {what} {v!r}")
        if not isinstance(f.mode, int) or not 0 <= f.mode <= 0o777:
            raise ConfigError(f"file {target}: invalid mode {f.mode!r}: at most 0777")
        total += len(f.data)
        seen.add(target)
        out.append(ContainerFile(target, f.data, f.uid, f.gid, f.mode))
    if total > MAX_TOTAL:
        raise ConfigError(f"files of one container exceed {MAX_TOTAL >> 20} MiB")
    return out


def to_wire(files: list[ContainerFile]) -> list[dict[str, Any]]:
    """JSON shape; the data goes last in each entry (a truncated request line shows targets, not data)."""
    import base64  # only when there are files (a CLI's start-up pays for every import)

    return [{"target": f.target, "uid": f.uid, "gid": f.gid, "mode": f.mode, "data": base64.b64encode(f.data).decode()} for f in files]


def from_wire(items: object) -> list[ContainerFile]:
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ConfigError("files must be a list of objects")
    import base64

    try:
        files = [ContainerFile(str(i["target"]), base64.b64decode(i["data"], validate=True), int(i["uid"]), int(i["gid"]), int(i["mode"])) for i in items]
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"malformed file entry: {type(exc).__name__}") from None
    return validate(files)
