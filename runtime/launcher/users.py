"""Resolve a container's ``user`` setting against the root filesystem's /etc/passwd and /etc/group.

Docker accepts ``uid``, ``uid:gid``, ``name`` and ``name:group``; names are looked up in the
*image's* files, not the host's, and supplementary groups come from /etc/group. The parsing is pure
(text in, Identity out) so it is unit tested; ``resolve_in_rootfs`` only reads the two files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from shoal.runtime.errors import ConfigError


@dataclass(frozen=True)
class Identity:
    """Who the container's process runs as."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def _passwd(text: str) -> list[tuple[str, int, int, str]]:
    rows = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 7 and parts[2].isdigit() and parts[3].isdigit():
            rows.append((parts[0], int(parts[2]), int(parts[3]), parts[5]))
    return rows


def _groups(text: str) -> list[tuple[str, int, list[str]]]:
    rows = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 4 and parts[2].isdigit():
            rows.append((parts[0], int(parts[2]), [m for m in parts[3].split(",") if m]))
    return rows


def resolve(spec: str, passwd_text: str, group_text: str) -> Identity:
    """Turn a user spec into uid, gid, supplementary groups and home directory."""
    if not spec:
        spec = "0"
    user_part, _, group_part = spec.partition(":")
    users = _passwd(passwd_text)
    groups = _groups(group_text)

    if user_part.isdigit():
        uid = int(user_part)
        entry = next((u for u in users if u[1] == uid), None)
    else:
        entry = next((u for u in users if u[0] == user_part), None)
        if entry is None:
            raise ConfigError(f"unable to find user {user_part}: no matching entries in passwd file")
        uid = entry[1]
    name = entry[0] if entry else None
    gid = entry[2] if entry else 0
    home = entry[3] if entry and entry[3] else "/"
    if uid == 0 and not entry:
        home = "/root"

    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            match = next((g for g in groups if g[0] == group_part), None)
            if match is None:
                raise ConfigError(f"unable to find group {group_part}: no matching entries in group file")
            gid = match[1]
    _check_id("uid", uid)
    _check_id("gid", gid)
    extra = tuple(sorted({g[1] for g in groups if name and name in g[2] and g[1] != gid}))
    return Identity(uid, gid, extra, home)


def add_groups(groups: tuple[int, ...], names: list[str], group_text: str, gid: int) -> tuple[int, ...]:
    """``groups`` plus docker's ``--group-add`` entries: gids, or names looked up in ``group_text``."""
    extra = set(groups)
    table = {g[0]: g[1] for g in _groups(group_text)}
    for name in names:
        if name.isdigit():
            value = int(name)
        elif name in table:
            value = table[name]
        else:
            raise ConfigError(f"unable to find group {name}: no matching entries in group file")
        _check_id("gid", value)
        extra.add(value)
    return tuple(sorted(extra)) if names else groups


def _check_id(kind: str, value: int) -> None:
    if value >= 2**32 - 1:
        raise ConfigError(f"{kind} {value} is out of range")


def resolve_in_rootfs(spec: str, rootfs: str) -> Identity:
    """Resolve ``spec`` using ``<rootfs>/etc/passwd`` and ``<rootfs>/etc/group`` (missing files are empty)."""
    texts = []
    for name in ("etc/passwd", "etc/group"):
        try:
            with open(os.path.join(rootfs, name), encoding="utf-8", errors="replace") as f:
                texts.append(f.read())
        except FileNotFoundError:
            texts.append("")
    return resolve(spec, texts[0], texts[1])
