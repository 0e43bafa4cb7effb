"""Container mounts for the runtime: docker's ``--mount`` and ``-v`` syntaxes, and the checks before a start.

The rules live once in the core (shoal.mountspec, shared with services and stacks); this module
turns their errors into the runtime's ConfigError and adds what only a node can check:
``check_sources`` refuses a bind source that does not exist (docker's ``--mount`` behaviour; shoal
applies it to ``-v`` too rather than silently creating a directory). Templates (``{{.Task.Slot}}``)
are a service feature, expanded by the worker: the runtime refuses one left in a mount.
"""

from __future__ import annotations

import os
import re
from typing import Any

from shoal import mountspec
from shoal.runtime.errors import ConfigError

TYPES = mountspec.TYPES
VOLUME_NAME_RE = mountspec.VOLUME_NAME_RE
RESERVED_TARGETS = mountspec.RESERVED_TARGETS
SIZE_RE = re.compile(r"^(\d+)([bkmg]?)b?$", re.IGNORECASE)
UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(text: str) -> int:
    m = SIZE_RE.fullmatch(text.strip())
    if not m:
        raise ConfigError(f"invalid size: {text!r}")
    return int(m.group(1)) * UNITS[m.group(2).lower()]


def parse_mount(text: str) -> dict[str, Any]:
    """``type=bind,src=/a,dst=/b,readonly`` (docker's --mount keys and aliases) -> mount dict."""
    try:
        return validate(mountspec.parse(text))
    except mountspec.MountError as exc:
        raise ConfigError(str(exc)) from None


def parse_volume(text: str) -> dict[str, Any]:
    """``-v SRC:DST[:ro|rw]``: an absolute SRC is a bind mount, otherwise a named volume."""
    try:
        return validate(mountspec.parse_volume(text))
    except mountspec.MountError as exc:
        raise ConfigError(str(exc)) from None


def validate(m: dict[str, Any]) -> dict[str, Any]:
    """A normalized copy of mount ``m``; ConfigError naming what is wrong."""
    for key in ("source", "target", "volume_subpath"):
        if "{{" in str(m.get(key) or ""):
            raise ConfigError(f"mount {key} {m[key]!r}: templates are only expanded for services")
    try:
        return mountspec.normalize(m)
    except mountspec.MountError as exc:
        raise ConfigError(str(exc)) from None


def validate_all(mounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = [validate(m) for m in mounts]
    try:
        return mountspec.normalize_all(result)
    except mountspec.MountError as exc:
        raise ConfigError(str(exc)) from None


def check_sources(mounts: list[dict[str, Any]]) -> None:
    for m in mounts:
        if m["type"] == "bind" and not os.path.exists(m["source"]):
            raise ConfigError(
                f'invalid mount config for type "bind": bind source path does not exist: {m["source"]}'
            )
