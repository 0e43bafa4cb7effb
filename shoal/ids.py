"""Object identifiers: 25 lowercase base-36 characters, like SwarmKit's, shown truncated to 12."""

from __future__ import annotations

import string

_ALPHABET = string.digits + string.ascii_lowercase


def new_id() -> str:
    """A fresh random id (about 129 bits)."""
    import secrets  # hashlib and random: not for a process that only shows ids (`shoal svc ls`)

    return "".join(secrets.choice(_ALPHABET) for _ in range(25))


def short(obj_id: str) -> str:
    """The 12-character form shown in tables."""
    return obj_id[:12]
