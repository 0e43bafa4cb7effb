"""The shared task-state vocabulary: order, terminal states and the effective-status rule."""

import pytest

from shoal import taskstate
from shoal.proto import types_pb2 as pb
from shoal.views import TaskView


def task(state: int) -> pb.Task:
    t = pb.Task(id="t1")
    t.status.state = state
    t.status.message = "manager"
    return t


def report(state: int) -> pb.TaskStatus:
    return pb.TaskStatus(state=state, message="agent")


def test_order_is_the_lifecycle_a_task_moves_through():
    lifecycle = [pb.NEW, pb.PENDING, pb.ASSIGNED, pb.ACCEPTED, pb.PREPARING, pb.STARTING, pb.RUNNING, pb.COMPLETE]
    positions = [taskstate.ORDER.index(s) for s in lifecycle]
    assert positions == sorted(positions)
    assert set(taskstate.ORDER) == set(pb.TaskState.values())


@pytest.mark.parametrize("state", [pb.NEW, pb.PENDING, pb.ASSIGNED, pb.ACCEPTED, pb.PREPARING, pb.STARTING, pb.RUNNING])
def test_states_before_complete_still_run(state: int):
    assert not taskstate.is_terminal(state)
    assert not TaskView(task(state), task(state).status).terminal


@pytest.mark.parametrize("state", [pb.COMPLETE, pb.SHUTDOWN, pb.FAILED, pb.REJECTED, pb.REMOVE, pb.ORPHANED])
def test_complete_and_every_later_state_is_terminal(state: int):
    assert taskstate.is_terminal(state)
    assert TaskView(task(state), task(state).status).terminal


def test_failed_states_are_the_ones_ending_in_an_error():
    assert {pb.FAILED, pb.REJECTED} == taskstate.FAILED_STATES
    assert all(taskstate.is_terminal(s) for s in taskstate.FAILED_STATES)


def test_without_a_report_the_managers_status_counts():
    t = task(pb.ASSIGNED)
    assert taskstate.effective_status(t, None).message == "manager"


def test_a_report_at_or_past_the_managers_state_counts():
    t = task(pb.ASSIGNED)
    assert taskstate.effective_status(t, report(pb.ASSIGNED)).message == "agent"
    assert taskstate.effective_status(t, report(pb.RUNNING)).state == pb.RUNNING


def test_a_stale_report_does_not_undo_a_later_manager_state():
    # the manager shut a task down before it reached the node; an old RUNNING report must not revive it
    t = task(pb.SHUTDOWN)
    got = taskstate.effective_status(t, report(pb.RUNNING))
    assert got.state == pb.SHUTDOWN and got.message == "manager"
