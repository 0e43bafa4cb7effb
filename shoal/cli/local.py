"""The node-local runtime that ``shoal run``, ``ps``, ``rm`` ... act on, and their containers' names,
without click: the fast ``shoal run`` (fastrun.py) needs them before click is loaded, and the click
commands take them from here through containers_common.py.

Containers get a 64-hex id and a name (``--name`` or a generated one, kept in the label ``shoal.name``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shoal.runtime.client.sync import SyncRuntime

DEFAULT_ROOT = "/var/lib/shoal/local"
CGROUP_PARENT = os.environ.get("SHOAL_LOCAL_CGROUP_PARENT", "shoal-local")  # tests give each run its own
NAME_LABEL = "shoal.name"
_ADJ = ("brave", "calm", "eager", "fond", "keen", "lucid", "merry", "quiet", "swift", "witty")
_NOUN = ("bass", "carp", "dory", "eel", "hake", "ling", "perch", "pike", "shad", "tuna")

LAUNCHER_LINGER_S = 60.0
"""The node-local launcher stays this long after the last container and command, as a daemon would,
so a series of ``shoal run``/``ps``/``rm`` does not start one each (env SHOAL_LAUNCHER_LINGER_S; 0: none)."""


def linger() -> float:
    return float(os.environ.get("SHOAL_LAUNCHER_LINGER_S") or LAUNCHER_LINGER_S)


def sync_runtime(root: str, cgroup_parent: str = CGROUP_PARENT) -> SyncRuntime:
    """The blocking client of this node's runtime (``shoal run``: no event loop, no asyncio to import)."""
    from shoal.runtime.client.sync import SyncRuntime

    return SyncRuntime(root, cgroup_parent=cgroup_parent, linger_s=linger())


def name_of(info: object) -> str:
    """A container's name (its ``shoal.name`` label), else its short id; ``info`` is a ContainerInfo."""
    return info.labels.get(NAME_LABEL, info.id[:12])  # type: ignore[attr-defined]


def new_id() -> str:
    return os.urandom(32).hex()  # what secrets.token_hex(32) does, without importing hashlib and random


def _below(n: int) -> int:
    """A uniform random int in [0, n) from os.urandom (rejection sampling: no modulo bias)."""
    limit = (1 << 32) - (1 << 32) % n
    while True:
        value = int.from_bytes(os.urandom(4), "little")
        if value < limit:
            return value % n


def new_name(taken: set[str]) -> str:
    while True:
        name = f"{_ADJ[_below(len(_ADJ))]}_{_NOUN[_below(len(_NOUN))]}{_below(100)}"
        if name not in taken:
            return name
