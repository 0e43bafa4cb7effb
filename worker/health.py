"""Health checks: docker's HEALTHCHECK semantics as a pure state machine plus the probe loop.

A task with a ``CMD`` / ``CMD-SHELL`` healthcheck starts ``starting``. Each probe runs through the
executor's exec with the check's timeout. A passing probe makes it ``healthy``; failures during the
start period do not count; after it, ``retries`` consecutive failures make it ``unhealthy``, and the
agent then fails the task ("unhealthy container") so the restart policy replaces it. While starting,
probes run every ``start_interval`` (5 s by default), then every ``interval`` (30 s).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from shoal.proto import types_pb2 as pb

DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_START_INTERVAL = 5.0
DEFAULT_RETRIES = 3


def probe_args(hc: pb.HealthCheck) -> list[str] | None:
    """The command a probe runs, or None when the task has no check (``NONE`` or empty)."""
    test = list(hc.test)
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    if test[0] == "CMD":
        return test[1:] or None
    return ["/bin/sh", "-c", " ".join(test)]


@dataclass
class Policy:
    interval: float
    timeout: float
    start_period: float
    start_interval: float
    retries: int

    @classmethod
    def of(cls, hc: pb.HealthCheck) -> Policy:
        return cls(
            hc.interval_ns / 1e9 or DEFAULT_INTERVAL,
            hc.timeout_ns / 1e9 or DEFAULT_TIMEOUT,
            hc.start_period_ns / 1e9,
            hc.start_interval_ns / 1e9 or DEFAULT_START_INTERVAL,
            int(hc.retries) or DEFAULT_RETRIES,
        )


@dataclass
class HealthState:
    """Where a container's health stands; ``observe`` folds one probe result in (pure)."""

    policy: Policy
    status: int = pb.HEALTH_STARTING
    failures: int = 0

    def observe(self, ok: bool, since_start: float) -> int:
        if ok:
            self.status, self.failures = pb.HEALTH_HEALTHY, 0
        elif since_start < self.policy.start_period and self.status == pb.HEALTH_STARTING:
            pass  # failures in the start period do not count
        else:
            self.failures += 1
            if self.failures >= self.policy.retries:
                self.status = pb.HEALTH_UNHEALTHY
        return self.status

    def next_delay(self, since_start: float) -> float:
        starting = self.status == pb.HEALTH_STARTING and since_start < self.policy.start_period
        return self.policy.start_interval if starting else self.policy.interval


Exec = Callable[[list[str], float], Awaitable[tuple[int, bytes]]]


async def monitor(hc: pb.HealthCheck, run: Exec, on_change: Callable[[int, str], None]) -> None:
    """Probe until cancelled; ``on_change(health, last output)`` on each change of status.

    Returns once the container is unhealthy (the caller fails the task).
    """
    args = probe_args(hc)
    if args is None:
        return
    state = HealthState(Policy.of(hc))
    started = time.monotonic()
    on_change(state.status, "")
    while True:
        since = time.monotonic() - started
        await asyncio.sleep(state.next_delay(since))
        try:
            code, out = await run(args, state.policy.timeout)
        except TimeoutError:
            code, out = -1, b"health check timed out"
        except Exception as exc:  # the container went away under the probe: the wait step will see it
            code, out = -1, str(exc).encode()
        before = state.status
        now = state.observe(code == 0, time.monotonic() - started)
        if now != before:
            on_change(now, out.decode(errors="replace")[-200:].strip())
        if now == pb.HEALTH_UNHEALTHY:
            return
