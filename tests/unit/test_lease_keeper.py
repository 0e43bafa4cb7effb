"""The leader's lease keeper: when it refreshes, when it keeps trying, and when it gives the lease up.

``LeaseKeeper.step`` is one tick of its thread, driven here with a fake clock, a fake refresh and
keepalives run inline (or held back, to answer them late). The real-etcd side is in
tests/integration/test_lease_keepalive.py.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from shoal.manager.leasekeeper import LeaseKeeper, boost_thread
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


def keeper(refresh: Refresh, clock: Clock, ttl: float = 2.0, wedged_s: float = 10.0, held: list | None = None) -> LeaseKeeper:
    submit = (lambda fn: fn()) if held is None else held.append  # inline, or answered when the test says
    return LeaseKeeper(refresh, 7, ttl, wedged_s=wedged_s, clock=clock, submit=submit)


def test_it_refreshes_every_quarter_ttl_and_waits_generously_for_each_answer():
    clock, refresh = Clock(), Refresh()
    k = keeper(refresh, clock)
    assert k.every == 0.5
    clock.now += 0.5
    assert k.step() is None
    assert refresh.calls == [(7, 4.0)], "a keepalive may take two TTLs to be answered, not only what the lease has left"
    assert k.expires == pytest.approx(clock.now + 2.0)
    assert LeaseKeeper(refresh, 7, 1.0).deadline == 2.0, "at least 2 s, however short the TTL"


def test_a_late_answer_extends_the_lease_from_when_its_keepalive_was_sent():
    clock, refresh, held = Clock(), Refresh(), []
    k = keeper(refresh, clock, held=held)
    clock.now += 0.5
    sent = clock.now
    k.step()
    for _ in range(3):  # three more ticks while the first keepalive is still unanswered: each sends another
        clock.now += 0.5
        assert k.step() is None
    assert len(held) == 4 and k.in_flight == 4
    clock.now += 0.5
    k.step()
    assert len(held) == 4, "at most MAX_IN_FLIGHT keepalives wait for an answer"
    clock.now += 0.3  # 2.8 s after the grant: past the local estimate, but etcd renewed it when each arrived
    held.pop(0)()
    assert k.expires == pytest.approx(sent + 2.0)
    assert k.step() is None and k.lost is None and k.in_flight == 4


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


def test_unanswered_keepalives_past_the_local_estimate_do_not_lose_a_lease_etcd_still_holds():
    clock, refresh = Clock(), Refresh()
    k = keeper(refresh, clock)
    refresh.fail = StoreError("etcdserver: leader changed")  # an etcd election, which extends every lease
    for _ in range(6):  # 3 s without an answer: past the TTL by the keeper's own clock
        clock.now += 0.5
        assert k.step() is None
    refresh.fail = None
    clock.now += 0.5
    assert k.step() is None, "etcd answered with a live lease: still the leader"
    assert k.expires == pytest.approx(clock.now + 2.0)


def test_the_lease_is_given_up_when_etcd_has_not_answered_for_long():
    clock, refresh = Clock(), Refresh()
    k = keeper(refresh, clock)
    assert k.unanswered_s == 6.0, "3 TTLs of 2 s (at least 5 s)"
    refresh.fail = StoreError("cannot reach etcd")
    for _ in range(12):
        clock.now += 0.5
        assert k.step() is None
    clock.now += 0.5
    assert k.step() == "no answer from etcd for 6.5 s"


def test_etcd_saying_the_lease_is_gone_ends_it_at_once():
    clock, refresh = Clock(), Refresh(ttl=0)
    k = keeper(refresh, clock)
    clock.now += 0.5
    assert "expired" in (k.step() or "")


def test_the_thread_reports_a_lost_lease_once_and_stops():
    refresh = Refresh(ttl=0)
    lost = threading.Event()
    calls = []
    k = LeaseKeeper(refresh, 7, 2.0)  # first tick after 0.5 s: etcd answers "gone"
    k.start(lambda: (calls.append(1), lost.set()))
    assert lost.wait(20)
    assert k.lost == "etcd says the lease expired or is gone"
    time.sleep(1.0)
    assert len(calls) == 1 and len(refresh.calls) == 1, "nothing is sent once the lease is lost"
    k.stop()


def test_the_keeper_threads_run_ahead_of_the_process_when_it_may_raise_their_priority():
    got = []

    def probe() -> None:
        boost_thread()
        got.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert got[0] == (max(-20, mine - 5) if os.geteuid() == 0 else mine)
