"""Per-container cgroups, v1 and v2 behind one interface (``Cgroups``); ``detect`` picks the host's.

``limits`` and ``hierarchy`` are pure (limit arithmetic; parsing the host's cgroup mounts), ``fs``
holds the file primitives, ``v1``/``v2`` the per-version operations. Only the launcher creates
cgroups; the lab reads ``hierarchy`` for its hosts.

``Cgroups`` and the managers behind ``detect`` (choose.py) are imported when first used: a client
validating a config needs only ``limits`` (shoal.runtime.spec), not the file operations of both
versions and the device filter (ctypes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shoal.runtime.cgroup.limits import Limits

if TYPE_CHECKING:
    from shoal.runtime.cgroup.base import Cgroups

__all__ = ["Cgroups", "Limits", "detect"]


def detect(parent: str) -> Cgroups:
    """The cgroup manager for this host, rooted below the calling process' own cgroup (see choose.py)."""
    from shoal.runtime.cgroup import choose

    return choose.detect(parent)


def __getattr__(name: str) -> Any:
    if name == "Cgroups":
        from shoal.runtime.cgroup.base import Cgroups

        return Cgroups
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
