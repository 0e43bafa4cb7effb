"""The leader's lease keeper: keepalives from threads of their own, and the lease given up only when it is gone.

A leader that lost its lease by mistake costs the cluster a leader change (a second or more without
orchestration), so the keeper errs on the side of etcd's own view, and safety does not depend on it:
every leader write compares the election key's create revision (the fence), so a leader that believes
in a lease etcd already revoked cannot write.

- Keepalives are sent every quarter of the TTL from the keeper's thread, each in a worker thread of
  its own (up to ``MAX_IN_FLIGHT`` at once), on a connection of their own (the store's
  ``blocking_lease_refresh``): neither a stalled event loop nor a slow answer delays the next
  keepalive, and etcd renews the lease when a keepalive *arrives*, however late its answer comes back.
- A slow answer is not a loss: each keepalive waits up to ``deadline`` (2 TTLs, at least 2 s) and,
  answered, extends the local estimate of the expiry from the time it was *sent*.
- The lease is lost when etcd answers that it is gone (TTL 0: expired, revoked, unknown), not when
  the local estimate runs out: an etcd leader election (which extends every lease) or an overloaded
  etcd can leave keepalives unanswered for longer than the TTL while etcd still holds the lease.
- It is also given up when etcd has not answered at all for ``unanswered_s`` (5 s, at least 3 TTLs)
  past the estimate (a leader cut off from etcd: another manager took over long ago), or when the
  event loop has not beaten for ``wedged_s`` (a wedged leader, not a busy one, must let go).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from shoal import log

_log = log.get(__name__)

LOOP_WEDGED_S = 10.0
"""A leader whose event loop has not run for this long stops keeping its lease: it is wedged, not busy."""
UNANSWERED_S = 5.0
"""With no answer from etcd for this long past the lease's expected end (and at least 3 TTLs), give it up."""
MAX_IN_FLIGHT = 4
PRIORITY_BOOST = 5  # the keeper's threads run this much nicer than the rest of the process (root only)


def boost_thread() -> None:
    """Raise the calling thread's CPU priority a little (best effort): a keepalive must not wait
    behind a loaded machine's runnable threads. Linux takes a thread id for PRIO_PROCESS."""
    with contextlib.suppress(OSError, AttributeError):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(-20, os.getpriority(os.PRIO_PROCESS, tid) - PRIORITY_BOOST))


class LeaseKeeper:
    """Keeps the leader's lease alive from threads while the event loop beats; says why it was lost.

    ``refresh(lease, deadline) -> TTL`` is one keepalive round trip (StoreError when unanswered, a TTL
    <= 0 when etcd no longer has the lease). ``submit`` runs a keepalive (a thread pool by default;
    the unit tests run it inline with a fake clock).
    """

    def __init__(self, refresh: Callable[[int, float], float], lease: int, ttl: float, wedged_s: float = LOOP_WEDGED_S,
                 clock: Callable[[], float] = time.monotonic, submit: Callable[[Callable[[], None]], object] | None = None,
                 unanswered_s: float | None = None) -> None:  # fmt: skip
        self.refresh = refresh
        self.lease = lease
        self.ttl = ttl
        self.every = ttl / 4
        self.deadline = max(2 * ttl, 2.0)
        self.wedged_s = wedged_s
        self.unanswered_s = max(UNANSWERED_S, 3 * ttl) if unanswered_s is None else unanswered_s
        self.clock = clock
        self.beat_at = self.answered_at = clock()
        self.expires = self.beat_at + ttl  # the lease was just granted (or refreshed)
        self.lost: str | None = None
        self.in_flight = 0
        self._failing = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._on_lost: Callable[[], None] = lambda: None
        self._pool: ThreadPoolExecutor | None = None
        self._submit = submit

    def beat(self) -> None:
        """The event loop is alive (called from it)."""
        self.beat_at = self.clock()

    def step(self) -> str | None:
        """One tick: send a keepalive unless too many are unanswered; why the lease is lost, or None."""
        now = self.clock()
        if self.lost is None and now - self.beat_at > self.wedged_s:
            self._lose(f"event loop wedged for {now - self.beat_at:.1f} s")
        elif self.lost is None and now > self.expires and now - self.answered_at > self.unanswered_s:
            self._lose(f"no answer from etcd for {now - self.answered_at:.1f} s")
        if self.lost is not None:
            return self.lost
        with self._lock:
            if self.in_flight >= MAX_IN_FLIGHT:
                return None
            self.in_flight += 1
        (self._submit or self._default_submit)(lambda: self._keepalive(now))
        return self.lost

    def _keepalive(self, sent_at: float) -> None:
        try:
            ttl = self.refresh(self.lease, self.deadline)
        except Exception as exc:  # noqa: BLE001 - unanswered (unreachable, leader election, overload): keep trying
            with self._lock:
                self.in_flight -= 1
                first, self._failing = not self._failing, True
            if first:  # once per streak: a minute of an unreachable etcd is not 240 lines
                _log.warning("leader lease keepalive unanswered; still trying", error=str(exc),
                             remaining_s=round(self.expires - self.clock(), 2))  # fmt: skip
            return
        with self._lock:
            self.in_flight -= 1
            self.answered_at = self.clock()
            if self._failing:
                _log.info("leader lease keepalive answered again", ttl_s=ttl, late_s=round(self.answered_at - self.expires, 2))
            self._failing = False
            if ttl > 0:
                self.expires = max(self.expires, sent_at + ttl)  # from when it was sent: never later than etcd's own
        if ttl <= 0:
            self._lose("etcd says the lease expired or is gone")

    def _lose(self, why: str) -> None:
        with self._lock:
            if self.lost is not None:
                return
            self.lost = why
        self._on_lost()

    def _default_submit(self, fn: Callable[[], None]) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(MAX_IN_FLIGHT, thread_name_prefix="leader-lease", initializer=boost_thread)
        with contextlib.suppress(RuntimeError):  # stopped meanwhile
            self._pool.submit(fn)

    def start(self, on_lost: Callable[[], None]) -> None:
        """Tick from a thread of its own; ``on_lost`` is called once (from a keeper thread) when the lease is lost."""
        self._on_lost = on_lost

        def run() -> None:
            boost_thread()
            while not self._stop.wait(self.every) and self.step() is None:
                pass

        threading.Thread(target=run, name="leader-lease", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
