"""An asyncio loop on a thread of its own, for work that may stall the thread it runs on.

A netlink request is a synchronous ``sendmsg``: the kernel handles it in the caller's thread, and a
request that changes links first waits for the kernel's RTNL lock, which a namespace being torn down
(or another node's agent on the same kernel) can hold for a tenth of a second and more. Run on the
agent's loop, each such wait stopped everything else the agent does: during a rolling update of 60
tasks the task wiring held a worker's loop half of the time, and health probes, status reports and
assignments waited behind it. Coroutines given to ``SideLoop.run`` run on the side thread's loop
instead, one after another where they block; the caller awaits their result without holding its loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class SideLoop:
    """A loop on a daemon thread, started by the first ``run`` and stopped by ``close``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._loop is not None

    def _start(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name=self.name, daemon=True)
            thread.start()
            self._loop, self._thread = loop, thread
        return self._loop

    async def run(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run the coroutine ``make()`` on the side loop and return its result (or raise its error);
        cancelling the caller cancels it there."""
        future = asyncio.run_coroutine_threadsafe(make(), self._start())
        return await asyncio.wrap_future(future)

    async def close(self) -> None:
        """Stop the loop and its thread (a later ``run`` starts them again)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join)
        loop.close()
