"""Per-container cgroups, v1 and v2 behind one interface (``Cgroups``); ``detect`` picks the host's.

``limits`` and ``hierarchy`` are pure (limit arithmetic; parsing the host's cgroup mounts), ``fs``
holds the file primitives, ``v1``/``v2`` the per-version operations. Only the launcher creates
cgroups; the lab reads ``hierarchy`` for its hosts.
"""

from shoal.runtime.cgroup.base import Cgroups
from shoal.runtime.cgroup.detect import detect
from shoal.runtime.cgroup.limits import Limits

__all__ = ["Cgroups", "Limits", "detect"]
