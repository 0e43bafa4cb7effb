"""The side loop runs coroutines on a thread of its own: the caller's loop goes on while one blocks there."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from shoal.worker.network.sideloop import SideLoop


async def test_a_coroutine_runs_on_the_side_thread_and_returns_its_result() -> None:
    side = SideLoop("test-side")
    try:
        async def where() -> str:
            return threading.current_thread().name

        assert await side.run(where) == "test-side"
        assert threading.current_thread().name != "test-side"
    finally:
        await side.close()
    assert not side.running


async def test_a_blocking_call_there_leaves_the_callers_loop_free() -> None:
    side = SideLoop("test-side")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async def block() -> str:
        time.sleep(0.3)  # a netlink request waiting for the kernel's lock
        return "done"

    ticker = asyncio.create_task(tick())
    try:
        assert await side.run(block) == "done"
        assert ticks >= 10  # the caller's loop kept turning meanwhile
    finally:
        ticker.cancel()
        await side.close()


async def test_an_error_there_is_raised_to_the_caller_and_the_loop_goes_on() -> None:
    side = SideLoop("test-side")
    try:
        async def fail() -> None:
            raise ValueError("no such device")

        with pytest.raises(ValueError, match="no such device"):
            await side.run(fail)

        async def one() -> int:
            return 1

        assert await side.run(one) == 1
    finally:
        await side.close()


async def test_cancelling_the_caller_cancels_the_coroutine_there() -> None:
    side = SideLoop("test-side")
    ended = threading.Event()

    async def long() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            ended.set()

    try:
        waiter = asyncio.create_task(side.run(long))
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert await asyncio.to_thread(ended.wait, 2.0)
    finally:
        await side.close()


async def test_close_stops_the_thread_and_a_later_run_starts_it_again() -> None:
    side = SideLoop("test-side-again")

    async def name() -> str:
        return threading.current_thread().name

    await side.run(name)
    await side.close()
    assert not any(t.name == "test-side-again" for t in threading.enumerate())
    assert await side.run(name) == "test-side-again"
    await side.close()
    await side.close()  # twice is fine
