"""Task status reports: coalesced per task, sent in batches while a session lives, resent after a failure."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.worker.reporter import Reporter, keep_newest, requeue


def status(state: int, message: str = "", health: int = pb.HEALTH_NONE) -> pb.TaskStatus:
    return pb.TaskStatus(state=state, message=message, health=health)


def unavailable() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "manager gone")


class Dispatcher:
    """Stands in for the dispatcher's UpdateTaskStatus: records requests, fails the first ``fail`` ones."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.requests: list[dpb.UpdateTaskStatusRequest] = []
        self.calls = 0

    async def UpdateTaskStatus(self, req: dpb.UpdateTaskStatusRequest, timeout: float) -> dpb.UpdateTaskStatusResponse:  # noqa: N802 (the gRPC method's name)
        self.calls += 1
        if self.fail:
            self.fail -= 1
            raise unavailable()
        self.requests.append(req)
        return dpb.UpdateTaskStatusResponse()

    def sent(self) -> dict[str, list[int]]:
        """Task id -> the states sent for it, in order."""
        out: dict[str, list[int]] = {}
        for r in self.requests:
            for u in r.updates:
                out.setdefault(u.task_id, []).append(u.status.state)
        return out


async def until(ok, timeout: float = 5) -> None:
    async def poll() -> None:
        while not ok():
            await asyncio.sleep(0.002)

    await asyncio.wait_for(poll(), timeout)


@pytest.fixture
async def reporter():
    r = Reporter(interval=0.01)
    task = asyncio.create_task(r.run())
    yield r
    task.cancel()


# ---- coalescing (pure) -------------------------------------------------------------------------------


def test_a_later_report_replaces_the_queued_one():
    pending: dict[str, pb.TaskStatus] = {}
    keep_newest(pending, "a", status(pb.PREPARING))
    keep_newest(pending, "a", status(pb.RUNNING))
    assert pending["a"].state == pb.RUNNING


def test_a_later_report_of_the_same_state_replaces_it_too():
    pending = {"a": status(pb.RUNNING, health=pb.HEALTH_STARTING)}
    keep_newest(pending, "a", status(pb.RUNNING, health=pb.HEALTH_HEALTHY))
    assert pending["a"].health == pb.HEALTH_HEALTHY


def test_a_report_behind_the_queued_state_is_dropped():
    pending = {"a": status(pb.FAILED)}
    keep_newest(pending, "a", status(pb.RUNNING))
    assert pending["a"].state == pb.FAILED


def test_a_failed_batch_goes_back_behind_newer_reports():
    pending = {"a": status(pb.RUNNING, health=pb.HEALTH_HEALTHY), "b": status(pb.COMPLETE)}
    requeue(pending, {"a": status(pb.RUNNING, health=pb.HEALTH_STARTING), "b": status(pb.RUNNING), "c": status(pb.STARTING)})
    assert pending["a"].health == pb.HEALTH_HEALTHY, "the report made since the batch is newer"
    assert pending["b"].state == pb.COMPLETE
    assert pending["c"].state == pb.STARTING, "a status nobody replaced is sent again"


# ---- sending -----------------------------------------------------------------------------------------


async def test_nothing_is_sent_without_a_session_and_everything_once_there_is_one(reporter):
    reporter.report("a", status(pb.ACCEPTED))
    await asyncio.sleep(0.05)
    d = Dispatcher()
    reporter.attach(d, "node-1", "session-1")
    await until(lambda: d.requests)
    assert d.requests[0].node_id == "node-1" and d.requests[0].session_id == "session-1"
    assert d.sent() == {"a": [pb.ACCEPTED]} and reporter.pending == {}


async def test_a_burst_of_transitions_goes_out_as_one_request_with_the_newest_per_task(reporter):
    d = Dispatcher()
    reporter.attach(d, "n", "s")
    for state in (pb.ACCEPTED, pb.PREPARING, pb.STARTING, pb.RUNNING):
        reporter.report("a", status(state))
    reporter.report("b", status(pb.ACCEPTED))
    await until(lambda: d.requests)
    await asyncio.sleep(0.03)
    assert len(d.requests) == 1 and d.sent() == {"a": [pb.RUNNING], "b": [pb.ACCEPTED]}


async def test_a_failed_send_is_retried_and_keeps_what_was_reported_since(reporter):
    d = Dispatcher(fail=1)
    reporter.attach(d, "n", "s")
    reporter.report("a", status(pb.RUNNING))
    await until(lambda: d.calls == 1)
    reporter.report("b", status(pb.ACCEPTED))
    await until(lambda: d.requests, timeout=5)
    await until(lambda: d.sent().keys() == {"a", "b"})
    assert d.sent()["a"] == [pb.RUNNING]


async def test_reports_wait_while_the_session_is_down(reporter):
    d = Dispatcher()
    reporter.attach(d, "n", "s1")
    reporter.detach()
    reporter.report("a", status(pb.RUNNING))
    await asyncio.sleep(0.05)
    assert d.calls == 0 and "a" in reporter.pending
    d2 = Dispatcher()
    reporter.attach(d2, "n", "s2")
    await until(lambda: d2.requests)
    assert d2.requests[0].session_id == "s2" and d.calls == 0


async def test_a_lone_report_goes_out_at_once_and_later_ones_wait_for_the_call_under_way():
    """No timer holds a report back (a healthy task is what a rolling update waits for); reports made
    while a call is under way go together in the next call."""
    release = asyncio.Event()

    class Slow(Dispatcher):
        async def UpdateTaskStatus(self, req, timeout):  # noqa: N802 (the gRPC method's name)
            self.requests.append(req)
            await release.wait()
            return dpb.UpdateTaskStatusResponse()

    r = Reporter()
    runner = asyncio.create_task(r.run())
    try:
        d = Slow()
        r.attach(d, "n", "s")
        r.report("a", status(pb.RUNNING, health=pb.HEALTH_HEALTHY))
        for _ in range(10):
            await asyncio.sleep(0)
        assert d.sent() == {"a": [pb.RUNNING]}
        r.report("b", status(pb.ACCEPTED))
        r.report("c", status(pb.ACCEPTED))
        for _ in range(10):
            await asyncio.sleep(0)
        assert len(d.requests) == 1, "b and c wait for a's call"
        release.set()
        await until(lambda: len(d.requests) == 2)
        assert set(d.sent()) == {"a", "b", "c"} and len(d.requests[1].updates) == 2
    finally:
        runner.cancel()
