"""Deadlines in tests, stretched on slow machines: the cgroup-v2 VM runs under software emulation.

Tests wait for an event by polling it with a deadline (``wait_until``, ``eventually``), never with a fixed
sleep: a loaded 2-core machine makes any fixed window flaky.

``SHOAL_TEST_TIME_SCALE`` (a factor, default 1; tests/v2vm/guest.sh sets it) multiplies every deadline
a test waits for an event with. Only deadlines: a test never waits longer than its event takes.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

SCALE = max(1.0, float(os.environ.get("SHOAL_TEST_TIME_SCALE", "1") or 1))


def scaled(seconds: float) -> float:
    """``seconds`` times the machine's slowness factor."""
    return seconds * SCALE


def wait_until(cond: Callable[[], Any], timeout: float = 20.0, what: str = "condition", interval: float = 0.1,
               detail: Callable[[], str] = lambda: "") -> Any:
    """``cond()``'s first truthy result, polled every ``interval`` s; AssertionError (with ``detail()``) after
    ``timeout`` (scaled) seconds."""
    limit = scaled(timeout)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        res = cond()
        if res:
            return res
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {limit}s\n{detail()}".rstrip())


async def eventually(cond: Callable[[], Awaitable[Any]], timeout: float = 10.0, what: str = "condition",
                     interval: float = 0.05, ignore: tuple[type[BaseException], ...] = ()) -> Any:
    """The async twin of ``wait_until``: awaits ``cond()`` until it is truthy; an exception in ``ignore`` counts
    as not yet (a manager that is still starting refuses calls)."""
    limit = scaled(timeout)
    deadline = time.monotonic() + limit
    while True:
        try:
            res = await cond()
        except ignore:
            res = None
        if res:
            return res
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {limit}s")
        await asyncio.sleep(interval)
