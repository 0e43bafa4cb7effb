"""The loop-stall sampler (shoal.loopwatch): a stall is logged with where the loop spent it; a busy but
beating loop logs nothing; the switch is an environment variable."""

from __future__ import annotations

import asyncio
import time

from structlog.testing import capture_logs

from shoal import loopwatch


def test_summarize_counts_the_most_frequent_stacks():
    assert loopwatch.summarize(["a", "b", "a", "c", "a", "b"], top=2) == [("a", 3), ("b", 2)]


def hog(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


async def test_a_stall_is_logged_with_the_function_that_held_the_loop():
    watch = loopwatch.LoopWatch(threshold_s=0.1, beat_s=0.02, sample_s=0.01)
    with capture_logs() as logs:
        runner = asyncio.create_task(watch.run())
        await asyncio.sleep(0.1)
        hog(0.5)
        await asyncio.sleep(0.2)
        runner.cancel()
    (stall,) = [e for e in logs if e["event"] == "event loop stall sampled"]
    assert 0.4 <= stall["stall_s"] < 2 and stall["samples"] >= 5
    assert "hog" in stall["stacks"][0] and "test_loopwatch.py" in stall["stacks"][0]


async def test_a_loop_that_beats_logs_nothing():
    watch = loopwatch.LoopWatch(threshold_s=0.2, beat_s=0.02, sample_s=0.01)
    with capture_logs() as logs:
        runner = asyncio.create_task(watch.run())
        for _ in range(20):
            hog(0.01)
            await asyncio.sleep(0)
        runner.cancel()
    assert [e for e in logs if e["event"] == "event loop stall sampled"] == []


def test_off_unless_the_variable_sets_a_threshold(monkeypatch):
    monkeypatch.delenv(loopwatch.ENV, raising=False)
    assert loopwatch.from_env() is None
    monkeypatch.setenv(loopwatch.ENV, "nonsense")
    assert loopwatch.from_env() is None
    monkeypatch.setenv(loopwatch.ENV, "0.5")
    watch = loopwatch.from_env()
    assert watch is not None and watch.threshold_s == 0.5


async def test_a_long_garbage_collection_is_logged_with_its_generation():
    import gc

    watch = loopwatch.LoopWatch(threshold_s=0.0, beat_s=0.02, sample_s=0.01)
    with capture_logs() as logs:
        runner = asyncio.create_task(watch.run())
        await asyncio.sleep(0.05)
        junk = [[i] for i in range(200_000)]  # objects for the collector to walk
        gc.collect(2)
        del junk
        runner.cancel()
        await asyncio.sleep(0)
    long = [e for e in logs if e["event"] == "long garbage collection"]
    assert long and long[-1]["generation"] == 2 and long[-1]["took_s"] >= 0
