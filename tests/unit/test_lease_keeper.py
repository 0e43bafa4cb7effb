"""The leader's lease keeper: when it refreshes, when it keeps trying, and when it gives the lease up.

``LeaseKeeper.step`` is one tick of its thread, driven here with a fake clock and a fake refresh.
"""

from __future__ import annotations

import threading

import pytest

from shoal.manager.election import LeaseKeeper
from shoal.manager.store.base import StoreError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Refresh:
    """etcd's side: answers with a TTL, or fails as told."""

    def __init__(self, ttl: float = 2.0) -> None:
        self.ttl = ttl
        self.fail: Exception | None = None
        self.calls: list[tuple[int, float]] = []

    def __call__(self, lease: int, timeout: float) -> float:
        self.calls.append((lease, timeout))
        if self.fail is not None:
            raise self.fail
        return self.ttl


def keeper(refresh: Refresh, clock: Clock, ttl: float = 2.0, wedged_s: float = 10.0) -> LeaseKeeper:
    return LeaseKeeper(refresh, 7, ttl, wedged_s=wedged_s, clock=clock)


def test_it_refreshes_every_quarter_ttl_with_the_time_the_lease_has_left_as_deadline():
    clock, refresh = Clock(), Refresh()
    k = keeper(refresh, clock)
    assert k.every == 0.5
    clock.now += 0.5
    assert k.step() is None
    assert refresh.calls == [(7, pytest.approx(1.5))]
    assert k.expires == pytest.approx(clock.now + 2.0)


def test_a_stalled_event_loop_does_not_cost_the_lease_while_it_still_beats_now_and_then():
    clock, refresh = Clock(), Refresh()
    k = keeper(refresh, clock)
    for _ in range(12):  # 6 s without a beat: three TTLs, still under the wedged limit
        clock.now += 0.5
        assert k.step() is None
    assert len(refresh.calls) == 12


def test_a_wedged_event_loop_gives_the_lease_up():
    clock, refresh = Clock(), Refresh()
    k = keeper(refresh, clock, wedged_s=10.0)
    clock.now += 10.5
    assert "wedged" in (k.step() or "")
    assert not refresh.calls, "a wedged leader does not keep its lease"


def test_a_failed_refresh_is_tried_again_while_the_lease_may_still_live():
    clock, refresh = Clock(), Refresh()
    k = keeper(refresh, clock)
    refresh.fail = StoreError("etcdserver: leader changed")
    clock.now += 0.5
    assert k.step() is None
    clock.now += 0.5
    assert k.step() is None
    refresh.fail = None
    clock.now += 0.5
    assert k.step() is None, "etcd answered again before the lease ran out: still the leader"
    assert k.expires == pytest.approx(clock.now + 2.0)


def test_the_lease_is_lost_once_it_has_certainly_run_out():
    clock, refresh = Clock(), Refresh()
    k = keeper(refresh, clock)
    refresh.fail = StoreError("cannot reach etcd")
    for _ in range(3):
        clock.now += 0.5
        assert k.step() is None
    clock.now += 0.5
    assert "ran out" in (k.step() or "")
    assert len(refresh.calls) == 3


def test_etcd_saying_the_lease_is_gone_ends_it_at_once():
    clock, refresh = Clock(), Refresh(ttl=0)
    k = keeper(refresh, clock)
    clock.now += 0.5
    assert "expired" in (k.step() or "")


def test_the_thread_reports_a_lost_lease_once_and_stops():
    refresh = Refresh(ttl=0)
    lost = threading.Event()
    k = LeaseKeeper(refresh, 7, 2.0)  # first tick after 0.5 s, with 1.5 s of lease left: etcd answers "gone"
    k.start(lost.set)
    assert lost.wait(20)
    assert k.lost == "lease expired or not found"
    k.stop()
