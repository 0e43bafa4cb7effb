"""Container mounts: docker's ``--mount`` and ``-v`` syntaxes, and the checks done before a start.

Pure parsing and validation on strings and dicts (unit tested); the only I/O is ``check_sources``,
which refuses a bind source that does not exist (docker's ``--mount`` behaviour; shoal applies it
to ``-v`` too rather than silently creating a directory).
"""

from __future__ import annotations

import os
import posixpath
import re
from typing import Any

from shoal.runtime.errors import ConfigError

TYPES = ("bind", "volume", "tmpfs")
VOLUME_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
SIZE_RE = re.compile(r"^(\d+)([bkmg]?)b?$", re.IGNORECASE)
UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
RESERVED_TARGETS = ("/", "/proc", "/sys", "/dev")


def parse_size(text: str) -> int:
    m = SIZE_RE.fullmatch(text.strip())
    if not m:
        raise ConfigError(f"invalid size: {text!r}")
    return int(m.group(1)) * UNITS[m.group(2).lower()]


def parse_mount(text: str) -> dict[str, Any]:
    """``type=bind,src=/a,dst=/b,readonly`` (docker's --mount keys and aliases) -> mount dict."""
    fields: dict[str, Any] = {"type": "volume", "source": "", "target": "", "readonly": False}
    for part in text.split(","):
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        if key in ("readonly", "ro"):
            fields["readonly"] = not eq or value.lower() in ("1", "true", "yes")
        elif key == "type":
            fields["type"] = value
        elif key in ("source", "src"):
            fields["source"] = value
        elif key in ("target", "destination", "dst"):
            fields["target"] = value
        elif key == "tmpfs-size":
            fields["tmpfs_size"] = parse_size(value)
        else:
            raise ConfigError(f"invalid mount option {key!r} in {text!r}")
    return validate(fields)


def parse_volume(text: str) -> dict[str, Any]:
    """``-v SRC:DST[:ro|rw]``: an absolute SRC is a bind mount, otherwise a named volume."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise ConfigError(f"invalid volume specification: {text!r} (use SRC:DST[:ro])")
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise ConfigError(f"invalid volume mode {mode!r} in {text!r}: use ro or rw")
    kind = "bind" if parts[0].startswith("/") else "volume"
    return validate({"type": kind, "source": parts[0], "target": parts[1], "readonly": mode == "ro"})


def validate(m: dict[str, Any]) -> dict[str, Any]:
    """A normalized copy of mount ``m``; ConfigError naming what is wrong."""
    kind = m.get("type")
    if kind not in TYPES:
        raise ConfigError(f"invalid mount type {kind!r}: use bind, volume or tmpfs")
    target = str(m.get("target") or "")
    if not target.startswith("/"):
        raise ConfigError(f"invalid mount target {target!r}: must be an absolute path")
    target = posixpath.normpath(target)
    if target in RESERVED_TARGETS:
        raise ConfigError(f"invalid mount target {target!r}: reserved")
    source = str(m.get("source") or "")
    if kind == "bind":
        if not source.startswith("/"):
            raise ConfigError(f"invalid bind source {source!r}: must be an absolute host path")
        source = posixpath.normpath(source)
    elif kind == "volume" and not VOLUME_NAME_RE.fullmatch(source):
        raise ConfigError(f"invalid volume name {source!r}: use [A-Za-z0-9][A-Za-z0-9_.-]*")
    elif kind == "tmpfs" and source:
        raise ConfigError("a tmpfs mount takes no source")
    size = int(m.get("tmpfs_size") or 0)
    if size < 0:
        raise ConfigError("tmpfs_size must be >= 0")
    return {
        "type": kind,
        "source": source,
        "target": target,
        "readonly": bool(m.get("readonly")),
        "tmpfs_size": size,
    }


def validate_all(mounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = [validate(m) for m in mounts]
    targets = [m["target"] for m in result]
    dupes = sorted({t for t in targets if targets.count(t) > 1})
    if dupes:
        raise ConfigError(f"duplicate mount point: {dupes[0]}")
    return result


def check_sources(mounts: list[dict[str, Any]]) -> None:
    for m in mounts:
        if m["type"] == "bind" and not os.path.exists(m["source"]):
            raise ConfigError(
                f'invalid mount config for type "bind": bind source path does not exist: {m["source"]}'
            )
