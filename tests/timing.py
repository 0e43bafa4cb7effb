"""Deadlines in tests, stretched on slow machines: the cgroup-v2 VM runs under software emulation.

``SHOAL_TEST_TIME_SCALE`` (a factor, default 1; tests/v2vm/guest.sh sets it) multiplies every deadline
a test waits for an event with. Only deadlines: a test never waits longer than its event takes.
"""

from __future__ import annotations

import os

SCALE = max(1.0, float(os.environ.get("SHOAL_TEST_TIME_SCALE", "1") or 1))


def scaled(seconds: float) -> float:
    """``seconds`` times the machine's slowness factor."""
    return seconds * SCALE
