"""One way to wait between attempts: exponential backoff with jitter, capped.

Every loop in shoal that tries again after a failure waits the same way: an agent that cannot reach a
manager, a control-API write riding out an etcd election, a reconcile pass that raised, a store watch
that broke, a cgroup the kernel still calls busy. The first wait is short, each further failure doubles
it up to a cap, and part of each wait is drawn at random so that a crowd of agents that lost the same
manager does not come back in lockstep. Jitter only ever shortens a wait: the cap is a promise (an
agent reconnects within it once a manager is back).

``Backoff`` is the schedule (use it where a loop owns its own waiting); ``retry`` and ``retry_sync``
run an attempt until it succeeds, the error is not retryable, or a time budget runs out.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = ["Backoff", "retry", "retry_sync"]

T = TypeVar("T")

Retryable = Callable[[BaseException], bool]
OnRetry = Callable[[BaseException, float], None]


@dataclass
class Backoff:
    """A schedule of waits: ``first``, then ``factor`` times longer after each failure, never over ``cap``."""

    first: float
    """Seconds before the first retry (before jitter)."""
    cap: float
    """No wait is ever longer than this."""
    factor: float = 2.0
    """How much longer each further wait is."""
    jitter: float = 0.5
    """The fraction of each wait drawn at random: a wait lies in ``[(1 - jitter) * w, w]``; 0 for none."""
    rand: Callable[[], float] = random.random
    """Uniform in [0, 1): ``random.Random(seed).random`` makes a schedule that can be replayed."""
    failures: int = field(default=0, init=False)
    """Failures since the last ``reset``: 0 means the next wait is the first one."""

    def __post_init__(self) -> None:
        if not 0 < self.first <= self.cap:
            raise ValueError(f"backoff: need 0 < first ({self.first}) <= cap ({self.cap})")
        if self.factor < 1 or not 0 <= self.jitter <= 1:
            raise ValueError(f"backoff: need factor >= 1 ({self.factor}) and 0 <= jitter <= 1 ({self.jitter})")

    def base(self) -> float:
        """The next wait before jitter (capped)."""
        n = min(self.failures, 64)  # first * factor**64 is past any cap that makes sense; no overflow
        return min(self.first * self.factor**n, self.cap)

    def next(self) -> float:
        """Count a failure and return how long to wait before the next attempt."""
        wait = self.base() * (1 - self.jitter * self.rand())
        self.failures += 1
        return wait

    def reset(self) -> None:
        """An attempt succeeded: the next failure starts the schedule again."""
        self.failures = 0

    async def sleep(self) -> None:
        """Count a failure and wait (asyncio)."""
        await _asleep(self.next())

    def sleep_sync(self) -> None:
        """Count a failure and wait (blocking: only in synchronous processes and threads)."""
        time.sleep(self.next())


async def _asleep(seconds: float) -> None:
    # asyncio is imported here, not at the top: the runtime's launcher (a synchronous fork server)
    # imports this module and would otherwise pay ~40 ms at start for an event loop it never runs
    import asyncio

    await asyncio.sleep(seconds)


def _always(_exc: BaseException) -> bool:
    return True


def _budget(timeout: float | None, clock: Callable[[], float]) -> Callable[[float], bool]:
    """A predicate: would a wait of ``w`` seconds end past the time budget?"""
    if timeout is None:
        return lambda _w: False
    deadline = clock() + timeout
    return lambda w: clock() + w > deadline


async def retry(
    attempt: Callable[[], Awaitable[T]],
    backoff: Backoff,
    *,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    retryable: Retryable = _always,
    timeout: float | None = None,
    on_retry: OnRetry | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] = _asleep,
) -> T:
    """Await ``attempt()`` until it returns; an error of ``retry_on`` that ``retryable`` accepts is retried.

    Gives up (re-raising the last error) when the next wait would end more than ``timeout`` seconds
    after the first attempt began. ``on_retry(error, wait)`` is called before each wait, to log it.
    ``clock`` and ``sleep`` belong together (a test passes a fake pair).
    """
    past = _budget(timeout, clock)
    while True:
        try:
            return await attempt()
        except retry_on as exc:
            wait = backoff.next()
            if not retryable(exc) or past(wait):
                raise
            if on_retry is not None:
                on_retry(exc, wait)
        await sleep(wait)


def retry_sync(
    attempt: Callable[[], T],
    backoff: Backoff,
    *,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    retryable: Retryable = _always,
    timeout: float | None = None,
    on_retry: OnRetry | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """``retry`` for synchronous code (the runtime's launcher, threads): the same rules, blocking waits."""
    past = _budget(timeout, clock)
    while True:
        try:
            return attempt()
        except retry_on as exc:
            wait = backoff.next()
            if not retryable(exc) or past(wait):
                raise
            if on_retry is not None:
                on_retry(exc, wait)
        sleep(wait)
