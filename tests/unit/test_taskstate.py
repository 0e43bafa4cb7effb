"""The agent's task state machine and controller, on the fake executor."""

import asyncio

import pytest

from shoal.proto import types_pb2 as pb
from shoal.worker.controller import TaskController
from shoal.worker.executor_fake import FakeExecutor
from shoal.worker.taskstate import Step, exit_status, next_step


def test_next_step_walks_forward():
    assert next_step(pb.RUNNING, pb.ASSIGNED) is Step.ACCEPT
    assert next_step(pb.RUNNING, pb.ACCEPTED) is Step.PREPARE
    assert next_step(pb.RUNNING, pb.PREPARING) is Step.START
    assert next_step(pb.RUNNING, pb.RUNNING) is Step.WAIT
    assert next_step(pb.SHUTDOWN, pb.RUNNING) is Step.SHUTDOWN
    assert next_step(pb.REMOVE, pb.ASSIGNED) is Step.SHUTDOWN
    assert next_step(pb.RUNNING, pb.FAILED) is Step.DONE


def test_exit_status_words():
    assert exit_status(0, False) == (pb.COMPLETE, "")
    assert exit_status(3, False) == (pb.FAILED, "task: non-zero exit (3)")
    assert exit_status(137, True)[1].endswith("OOM killed")


def make_task(labels=None) -> pb.Task:
    t = pb.Task(id="t1", service_id="s", service_name="web", slot=1, desired_state=pb.RUNNING)
    t.spec.container.labels.update(labels or {})
    t.status.state = pb.ASSIGNED
    return t


async def drive(labels, stop_after=None):
    reports: list[pb.TaskStatus] = []
    ex = FakeExecutor()
    ctl = TaskController(make_task(labels), ex, lambda tid, st: reports.append(st))
    run = asyncio.create_task(ctl.run())
    if stop_after is not None:
        await asyncio.sleep(stop_after)
        t = make_task(labels)
        t.desired_state = pb.SHUTDOWN
        ctl.update(t)
    await asyncio.wait_for(run, 5)
    return [r.state for r in reports], reports


async def test_task_runs_to_completion():
    states, _ = await drive({"fake.run_s": "0.01"})
    assert states == [pb.ACCEPTED, pb.PREPARING, pb.STARTING, pb.RUNNING, pb.COMPLETE]


async def test_task_failure_reports_exit_code():
    states, reports = await drive({"fake.run_s": "0.01", "fake.exit_code": "3"})
    assert states[-1] == pb.FAILED
    assert reports[-1].exit_code == 3 and reports[-1].err == "task: non-zero exit (3)"


async def test_start_error_fails_the_task_with_the_reason():
    states, reports = await drive({"fake.fail_start": "exec: nosuch: not found"})
    assert states[-1] == pb.FAILED
    assert reports[-1].err == "exec: nosuch: not found"


async def test_desired_shutdown_stops_a_running_task():
    states, _ = await drive({}, stop_after=0.05)
    assert states[-2:] == [pb.RUNNING, pb.SHUTDOWN]


async def test_states_never_move_backwards():
    ctl = TaskController(make_task(), FakeExecutor(), lambda *_: None, observed=pb.RUNNING)
    with pytest.raises(AssertionError):
        ctl._set(pb.STARTING)
