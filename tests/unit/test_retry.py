"""The one retry helper: its schedule (growth, cap, jitter) and the retry loops, on a fake clock."""

from __future__ import annotations

import asyncio
import errno
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.retry import Backoff, retry, retry_sync


class FakeClock:
    """Time that moves only when someone sleeps: retry tests never wait on the wall clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


class Flaky:
    """Fails ``times`` times with ``error``, then returns ``value``; counts its calls."""

    def __init__(self, times: int, error: BaseException, value: object = "ok") -> None:
        self.times, self.error, self.value, self.calls = times, error, value, 0

    def __call__(self) -> object:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        return self.value

    async def aio(self) -> object:
        return self()


def no_jitter(first: float, cap: float) -> Backoff:
    return Backoff(first, cap, jitter=0)


# ---- the schedule --------------------------------------------------------------------------------


def test_waits_double_up_to_the_cap():
    b = no_jitter(0.1, 2.0)
    assert [round(b.next(), 6) for _ in range(7)] == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    assert b.failures == 7


def test_reset_starts_the_schedule_again():
    b = no_jitter(0.1, 2.0)
    for _ in range(5):
        b.next()
    b.reset()
    assert b.failures == 0 and b.next() == pytest.approx(0.1)


def test_other_growth_factors():
    b = Backoff(1.0, 100.0, factor=3.0, jitter=0)
    assert [b.next() for _ in range(4)] == [1.0, 3.0, 9.0, 27.0]
    flat = Backoff(0.5, 0.5, factor=1.0, jitter=0)
    assert {flat.next() for _ in range(5)} == {0.5}


def test_jitter_only_shortens_a_wait():
    b = Backoff(1.0, 1.0, jitter=0.5, rand=iter([0.0, 0.5, 0.999999]).__next__)
    assert [round(b.next(), 4) for _ in range(3)] == [1.0, 0.75, 0.5]


def test_a_seeded_schedule_replays():
    one = Backoff(0.1, 2.0, rand=random.Random(7).random)
    two = Backoff(0.1, 2.0, rand=random.Random(7).random)
    assert [one.next() for _ in range(10)] == [two.next() for _ in range(10)]


def test_jittered_waits_of_many_agents_spread_out():
    waits = {round(Backoff(0.1, 2.0, rand=random.Random(seed).random).next(), 6) for seed in range(50)}
    assert len(waits) > 40, "fifty agents that lost one manager must not retry in lockstep"


def test_many_failures_do_not_overflow():
    b = no_jitter(0.1, 2.0)
    for _ in range(5000):
        assert b.next() <= 2.0


@pytest.mark.parametrize(
    "kwargs",
    [dict(first=0, cap=1), dict(first=2, cap=1), dict(first=-1, cap=1), dict(first=0.1, cap=1, factor=0.5), dict(first=0.1, cap=1, jitter=1.5)],
)
def test_a_schedule_that_makes_no_sense_is_refused(kwargs):
    with pytest.raises(ValueError, match="backoff"):
        Backoff(**kwargs)


@given(
    first=st.floats(0.001, 5),
    extra=st.floats(0, 60),
    factor=st.floats(1, 4),
    jitter=st.floats(0, 1),
    seed=st.integers(0, 2**32),
    n=st.integers(1, 80),
)
def test_no_wait_exceeds_the_cap_and_none_is_negative(first, extra, factor, jitter, seed, n):
    b = Backoff(first, first + extra, factor=factor, jitter=jitter, rand=random.Random(seed).random)
    for _ in range(n):
        w = b.next()
        assert 0 <= w <= first + extra
        assert w >= (1 - jitter) * min(first, first + extra) - 1e-12


@given(first=st.floats(0.001, 1), extra=st.floats(0, 10), n=st.integers(1, 40))
def test_without_jitter_waits_never_shrink(first, extra, n):
    b = no_jitter(first, first + extra)
    waits = [b.next() for _ in range(n)]
    assert waits == sorted(waits)


async def test_backoff_sleep_waits_about_the_next_delay():
    b = no_jitter(0.01, 0.01)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await b.sleep()
    assert loop.time() - t0 >= 0.009 and b.failures == 1


def test_backoff_sleep_sync_counts_a_failure():
    b = no_jitter(0.001, 0.001)
    b.sleep_sync()
    assert b.failures == 1


# ---- retry_sync ----------------------------------------------------------------------------------


def test_retry_sync_returns_once_the_attempt_succeeds():
    clock, flaky = FakeClock(), Flaky(3, OSError(errno.EBUSY, "busy"))
    got = retry_sync(flaky, no_jitter(0.001, 0.05), retry_on=OSError, clock=clock, sleep=clock.sleep)
    assert got == "ok" and flaky.calls == 4
    assert clock.waits == pytest.approx([0.001, 0.002, 0.004])


def test_retry_sync_does_not_retry_other_errors():
    clock, flaky = FakeClock(), Flaky(1, KeyError("x"))
    with pytest.raises(KeyError):
        retry_sync(flaky, no_jitter(0.001, 0.05), retry_on=OSError, clock=clock, sleep=clock.sleep)
    assert flaky.calls == 1 and clock.waits == []


def test_retry_sync_asks_whether_an_error_is_worth_retrying():
    clock, flaky = FakeClock(), Flaky(5, OSError(errno.EACCES, "denied"))
    with pytest.raises(OSError) as info:
        retry_sync(flaky, no_jitter(0.001, 0.05), retry_on=OSError, retryable=lambda e: getattr(e, "errno", 0) == errno.EBUSY, clock=clock, sleep=clock.sleep)
    assert info.value.errno == errno.EACCES and flaky.calls == 1


def test_retry_sync_gives_up_before_a_wait_would_pass_the_budget():
    clock, flaky = FakeClock(), Flaky(100, OSError(errno.EBUSY, "busy"))
    with pytest.raises(OSError):
        retry_sync(flaky, no_jitter(0.1, 0.4), retry_on=OSError, timeout=1.0, clock=clock, sleep=clock.sleep)
    # 0.1 + 0.2 + 0.4 = 0.7; the next 0.4 would end at 1.1, past the budget
    assert clock.waits == pytest.approx([0.1, 0.2, 0.4]) and flaky.calls == 4
    assert clock.now <= 1.0


def test_retry_sync_with_no_budget_left_tries_once():
    clock, flaky = FakeClock(), Flaky(100, OSError(errno.EBUSY, "busy"))
    with pytest.raises(OSError):
        retry_sync(flaky, no_jitter(0.1, 0.4), retry_on=OSError, timeout=-1.0, clock=clock, sleep=clock.sleep)
    assert flaky.calls == 1


def test_retry_sync_tells_each_retry():
    clock, flaky, seen = FakeClock(), Flaky(2, ValueError("boom")), []
    retry_sync(flaky, no_jitter(0.5, 1.0), on_retry=lambda e, w: seen.append((str(e), w)), clock=clock, sleep=clock.sleep)
    assert seen == [("boom", 0.5), ("boom", 1.0)]


def test_retry_sync_real_sleep_by_default():
    flaky = Flaky(2, ValueError("boom"))
    assert retry_sync(flaky, no_jitter(0.001, 0.001)) == "ok"


# ---- retry (async) ------------------------------------------------------------------------------


async def test_retry_returns_once_the_attempt_succeeds():
    clock, flaky = FakeClock(), Flaky(2, ConnectionError("down"), value=42)
    got = await retry(flaky.aio, no_jitter(0.2, 2.0), retry_on=ConnectionError, clock=clock, sleep=clock.asleep)
    assert got == 42 and clock.waits == pytest.approx([0.2, 0.4])


async def test_retry_gives_up_with_the_last_error_after_the_budget():
    clock, flaky = FakeClock(), Flaky(100, ConnectionError("still down"))
    with pytest.raises(ConnectionError, match="still down"):
        await retry(flaky.aio, no_jitter(0.2, 2.0), retry_on=ConnectionError, timeout=5.5, clock=clock, sleep=clock.asleep)
    # 0.2 0.4 0.8 1.6 2.0 end at 5.0; the next 2.0 would end at 7.0, past the budget
    assert clock.waits == pytest.approx([0.2, 0.4, 0.8, 1.6, 2.0]) and clock.now <= 5.5


async def test_retry_does_not_swallow_cancellation():
    async def hang() -> None:
        await asyncio.sleep(10)

    task = asyncio.create_task(retry(hang, no_jitter(0.01, 0.01)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_retry_real_sleep_by_default():
    flaky = Flaky(1, ValueError("x"))
    assert await retry(flaky.aio, no_jitter(0.001, 0.001)) == "ok"


# ---- a user of the helper: the runtime's cgroup removal -------------------------------------------


def test_rmdir_retry_removes_an_empty_directory_and_ignores_a_missing_one(tmp_path):
    from shoal.runtime.cgroup.fs import rmdir_retry

    d = tmp_path / "cg"
    d.mkdir()
    rmdir_retry(str(d), deadline=float("inf"))
    assert not d.exists()
    rmdir_retry(str(d), deadline=float("inf"))  # gone already: fine


def test_rmdir_retry_names_the_directory_when_it_cannot_be_removed(tmp_path):
    from shoal.runtime.cgroup.fs import rmdir_retry
    from shoal.runtime.errors import ContainerError

    d = tmp_path / "cg"
    (d / "child").mkdir(parents=True)  # not empty: not the kind of error worth retrying
    with pytest.raises(ContainerError, match=f"cannot remove cgroup {d}"):
        rmdir_retry(str(d), deadline=float("inf"))
