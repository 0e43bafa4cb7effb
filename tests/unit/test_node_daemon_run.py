"""How a node process ends: a signal is a clean stop, a manager's or a join's failure is one NodeError."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from shoal.manager.server import ManagerError
from shoal.node import daemon
from shoal.node.options import NodeError
from shoal.worker.join import JoinError


@pytest.mark.timeout(20)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_node_cleanly(sig: int):
    reached: list[str] = []

    async def node() -> None:
        reached.append("started")
        os.kill(os.getpid(), sig)
        await asyncio.sleep(15)
        reached.append("not stopped")

    daemon.run_until_signal(node())
    assert reached == ["started"]


def test_a_node_that_returns_ends_normally():
    async def node() -> None:
        await asyncio.sleep(0)

    daemon.run_until_signal(node())


@pytest.mark.parametrize(("error", "text"), [(ManagerError, "cannot listen on 127.0.0.1:1: in use"), (JoinError, "join refused by m:4242: bad token")])
def test_a_failure_inside_the_task_group_is_one_node_error(error: type[Exception], text: str):
    async def node() -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(asyncio.sleep(10))

            async def fail() -> None:
                raise error(text)

            tg.create_task(fail())

    with pytest.raises(NodeError) as err:
        daemon._run_or_fail(node())
    assert str(err.value) == text


def test_other_errors_are_not_hidden():
    async def node() -> None:
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        daemon._run_or_fail(node())


@pytest.mark.timeout(20)
def test_a_second_signal_abandons_the_clean_stop():
    reached: list[str] = []

    async def node() -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(15)
        finally:  # the clean stop (stopping containers, say) that a second signal cuts short
            reached.append("stopping")
            await asyncio.sleep(0.2)
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(15)
            reached.append("stop finished")

    daemon.run_until_signal(node())
    assert reached == ["stopping"]


@pytest.mark.timeout(20)
def test_one_signal_lets_the_clean_stop_finish():
    reached: list[str] = []

    async def node() -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(15)
        finally:
            await asyncio.sleep(0.2)
            reached.append("stop finished")

    daemon.run_until_signal(node())
    assert reached == ["stop finished"]


@pytest.mark.parametrize("error", [ManagerError, JoinError])
def test_a_failure_in_a_task_group_inside_another_is_one_node_error_with_its_own_text(error: type[Exception]):
    """The agent's task group runs inside the node's: the message is the error's, not the group's."""
    text = "session refused by m:4242: permission denied: node n1 was removed from the cluster"

    async def fail() -> None:
        raise error(text)

    async def agent() -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(fail())

    async def node() -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(asyncio.sleep(10))
            tg.create_task(agent())

    with pytest.raises(NodeError) as err:
        daemon._run_or_fail(node())
    assert str(err.value) == text
