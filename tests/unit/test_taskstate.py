"""The agent's task state machine, on plain data: next step, the status each outcome leads to, forward only."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.proto import types_pb2 as pb
from shoal.taskstate import TERMINAL
from shoal.worker.executor import Exit
from shoal.worker.taskstate import (
    BackwardsTransition,
    Done,
    Failed,
    Status,
    Step,
    Waited,
    begin,
    decide,
    exit_status,
    forward,
    health_status,
    lost,
    next_step,
    removal_grace,
    wait_outcome,
)

AGENT_STATES = [pb.ACCEPTED, pb.PREPARING, pb.STARTING, pb.RUNNING, pb.COMPLETE, pb.SHUTDOWN, pb.FAILED, pb.REJECTED]
TERMINAL_STATES = [pb.COMPLETE, pb.SHUTDOWN, pb.FAILED, pb.REJECTED]
DESIRED = [pb.RUNNING, pb.COMPLETE, pb.SHUTDOWN, pb.REMOVE]


# ---- next_step ------------------------------------------------------------------------------------


def test_next_step_walks_forward():
    assert next_step(pb.RUNNING, pb.ASSIGNED) is Step.ACCEPT
    assert next_step(pb.RUNNING, pb.ACCEPTED) is Step.PREPARE
    assert next_step(pb.RUNNING, pb.PREPARING) is Step.START
    assert next_step(pb.RUNNING, pb.STARTING) is Step.START
    assert next_step(pb.RUNNING, pb.RUNNING) is Step.WAIT


def test_a_stop_wins_over_every_step_that_is_not_done():
    for observed in [pb.ASSIGNED, pb.ACCEPTED, pb.PREPARING, pb.STARTING, pb.RUNNING]:
        assert next_step(pb.SHUTDOWN, observed) is Step.SHUTDOWN
        assert next_step(pb.REMOVE, observed) is Step.SHUTDOWN


@pytest.mark.parametrize("observed", TERMINAL_STATES)
@pytest.mark.parametrize("desired", DESIRED)
def test_a_terminal_task_is_done_whatever_is_desired(desired, observed):
    assert next_step(desired, observed) is Step.DONE


def test_a_finished_job_marked_complete_keeps_waiting_until_it_exits():
    # the orchestrator sets desired COMPLETE on a job's finished tasks; it is not a stop
    assert next_step(pb.COMPLETE, pb.RUNNING) is Step.WAIT


# ---- begin ------------------------------------------------------------------------------------------


def test_prepare_and_start_announce_the_state_they_enter():
    assert begin(Step.PREPARE) == Status(pb.PREPARING, "preparing")
    assert begin(Step.START) == Status(pb.STARTING, "starting")
    for step in (Step.ACCEPT, Step.WAIT, Step.SHUTDOWN, Step.DONE):
        assert begin(step) is None


# ---- decide: the lifecycle rules ----------------------------------------------------------------


def test_accepting_a_task():
    assert decide(Step.ACCEPT, pb.RUNNING, Done()) == Status(pb.ACCEPTED, "accepted")


def test_a_prepared_task_stays_preparing_until_it_starts():
    assert decide(Step.PREPARE, pb.RUNNING, Done()) is None


def test_a_task_that_cannot_be_prepared_is_rejected_with_the_reason():
    st_ = decide(Step.PREPARE, pb.RUNNING, Failed("image busybox:9 not found on node n1"))
    assert st_ == Status(pb.REJECTED, "failed", err="image busybox:9 not found on node n1")


def test_a_started_task_runs_with_its_pid():
    assert decide(Step.START, pb.RUNNING, Done(pid=4242)) == Status(pb.RUNNING, "started", pid=4242)


def test_a_task_that_cannot_start_failed_with_the_reason():
    st_ = decide(Step.START, pb.RUNNING, Failed("exec: nosuch: not found"))
    assert st_ == Status(pb.FAILED, "failed", err="exec: nosuch: not found")


def test_a_task_asked_to_stop_while_starting_still_reports_running_then_stops():
    # start returned after the manager asked for a stop: the container runs, and the next step stops it
    assert decide(Step.START, pb.SHUTDOWN, Done(pid=7)).state == pb.RUNNING
    assert next_step(pb.SHUTDOWN, pb.RUNNING) is Step.SHUTDOWN


def test_exit_code_zero_completes():
    assert decide(Step.WAIT, pb.RUNNING, Exit(0)) == Status(pb.COMPLETE, "finished")


def test_a_non_zero_exit_fails_with_dockers_words_and_the_code():
    assert decide(Step.WAIT, pb.RUNNING, Exit(3)) == Status(pb.FAILED, "failed", err="task: non-zero exit (3)", exit_code=3)


def test_an_oom_kill_fails_and_says_so():
    st_ = decide(Step.WAIT, pb.RUNNING, Exit(137, oom_killed=True))
    assert st_ == Status(pb.FAILED, "failed", err="task: non-zero exit (137): OOM killed", exit_code=137)


def test_an_oom_kill_fails_even_with_exit_code_zero():
    assert decide(Step.WAIT, pb.RUNNING, Exit(0, oom_killed=True)).state == pb.FAILED


@pytest.mark.parametrize("desired", [pb.SHUTDOWN, pb.REMOVE])
@pytest.mark.parametrize("code", [0, 1, 137, 143])
def test_an_exit_after_a_stop_request_is_a_shutdown_whatever_the_code(desired, code):
    assert decide(Step.WAIT, desired, Exit(code)) == Status(pb.SHUTDOWN, "shutdown", exit_code=code)


def test_an_unhealthy_container_fails_the_task():
    assert decide(Step.WAIT, pb.RUNNING, Waited.UNHEALTHY) == Status(pb.FAILED, "failed", err="task: unhealthy container")


@pytest.mark.parametrize("desired", [pb.COMPLETE, pb.SHUTDOWN, pb.REMOVE])
def test_unhealthy_only_fails_a_task_that_should_run(desired):
    assert decide(Step.WAIT, desired, Waited.UNHEALTHY) is None


@pytest.mark.parametrize("desired", DESIRED)
def test_an_interrupted_wait_changes_nothing(desired):
    assert decide(Step.WAIT, desired, Waited.INTERRUPTED) is None


def test_a_wait_that_errs_fails_the_task():
    assert decide(Step.WAIT, pb.RUNNING, Failed("no such container: t1")) == Status(pb.FAILED, "failed", err="no such container: t1")


def test_a_stop_reaches_shutdown():
    assert decide(Step.SHUTDOWN, pb.SHUTDOWN, Done()) == Status(pb.SHUTDOWN, "shutdown")


def test_a_stop_that_errs_fails_the_task():
    assert decide(Step.SHUTDOWN, pb.SHUTDOWN, Failed("kill: permission denied")).state == pb.FAILED


def test_done_decides_nothing():
    assert decide(Step.DONE, pb.RUNNING, Done()) is None


# ---- wait_outcome, health, lost, removal ---------------------------------------------------------


def test_an_exit_wins_over_a_health_verdict():
    assert wait_outcome(Exit(1), pb.HEALTH_UNHEALTHY, pb.RUNNING) == Exit(1)


def test_unhealthy_without_an_exit_while_it_should_run():
    assert wait_outcome(None, pb.HEALTH_UNHEALTHY, pb.RUNNING) is Waited.UNHEALTHY


@pytest.mark.parametrize("health", [pb.HEALTH_NONE, pb.HEALTH_STARTING, pb.HEALTH_HEALTHY])
def test_a_healthy_wait_that_ended_was_interrupted(health):
    assert wait_outcome(None, health, pb.RUNNING) is Waited.INTERRUPTED


def test_unhealthy_while_stopping_is_an_interruption():
    assert wait_outcome(None, pb.HEALTH_UNHEALTHY, pb.SHUTDOWN) is Waited.INTERRUPTED


def test_health_changes_keep_the_task_running_and_show_why_it_is_unhealthy():
    assert health_status(pb.HEALTH_HEALTHY, "ok") == Status(pb.RUNNING, "started")
    assert health_status(pb.HEALTH_UNHEALTHY, "curl: (7) refused") == Status(pb.RUNNING, "started", err="health check: curl: (7) refused")
    assert health_status(pb.HEALTH_UNHEALTHY, "") == Status(pb.RUNNING, "started")


def test_exit_status_words():
    assert exit_status(0, False) == (pb.COMPLETE, "")
    assert exit_status(3, False) == (pb.FAILED, "task: non-zero exit (3)")
    assert exit_status(137, True)[1].endswith("OOM killed")


@pytest.mark.parametrize("observed", [pb.ASSIGNED, pb.PREPARING, pb.STARTING, pb.RUNNING])
def test_a_lost_container_fails_a_live_task(observed):
    assert lost(observed, "container lost while the agent was down") == Status(pb.FAILED, "failed", err="container lost while the agent was down")


@pytest.mark.parametrize("observed", TERMINAL_STATES)
def test_a_lost_container_of_an_ended_task_changes_nothing(observed):
    assert lost(observed, "gone") is None


def test_removal_of_a_task_that_never_had_a_container_does_nothing():
    assert removal_grace(pb.ACCEPTED, False, 10.0) is None
    assert removal_grace(pb.ASSIGNED, False, 10.0) is None


def test_removal_stops_a_live_container_with_its_grace_and_an_ended_one_at_once():
    assert removal_grace(pb.RUNNING, True, 10.0) == 10.0
    assert removal_grace(pb.PREPARING, False, 3.0) == 3.0  # preparing may have created it
    assert removal_grace(pb.FAILED, True, 10.0) == 0.0
    assert removal_grace(pb.COMPLETE, False, 10.0) == 0.0


def test_forward_allows_staying_and_moving_on_but_never_back():
    assert forward(pb.RUNNING, pb.RUNNING) == pb.RUNNING
    assert forward(pb.RUNNING, pb.FAILED) == pb.FAILED
    with pytest.raises(BackwardsTransition, match="RUNNING -> STARTING"):
        forward(pb.RUNNING, pb.STARTING)
    assert issubclass(BackwardsTransition, AssertionError)


# ---- properties: observed state never moves back -------------------------------------------------


def outcomes_for(step: Step) -> st.SearchStrategy:
    failed = st.builds(Failed, st.text(min_size=1, max_size=20))
    if step is Step.START:
        return st.one_of(st.builds(Done, st.integers(1, 2**22)), failed)
    if step is Step.WAIT:
        exits = st.builds(Exit, st.integers(0, 255), st.booleans())
        return st.one_of(exits, st.sampled_from(list(Waited)), failed)
    if step in (Step.PREPARE, Step.SHUTDOWN):
        return st.one_of(st.just(Done()), failed)
    return st.just(Done())


def run_task(data: st.DataObject, observed: int, desired: int, steps: int = 25) -> list[int]:
    """Drive a task through the pure machine with drawn outcomes and desired-state changes."""
    seen = [observed]
    for _ in range(steps):
        step = next_step(desired, observed)
        if step is Step.DONE:
            break
        if (b := begin(step)) is not None:
            observed = forward(observed, b.state)
            seen.append(observed)
        outcome = data.draw(outcomes_for(step))
        if data.draw(st.booleans()):
            desired = data.draw(st.sampled_from(DESIRED))  # the manager may change its mind meanwhile
        if (d := decide(step, desired, outcome)) is not None:
            observed = forward(observed, d.state)
            seen.append(observed)
    return seen


@settings(max_examples=150)
@given(data=st.data(), observed=st.sampled_from([pb.ASSIGNED, pb.ACCEPTED, pb.PREPARING, pb.STARTING, pb.RUNNING]), desired=st.sampled_from(DESIRED))
def test_observed_state_never_moves_back(data, observed, desired):
    seen = run_task(data, observed, desired)  # forward() raises on any step back
    assert seen == sorted(seen)
    assert all(s in AGENT_STATES for s in seen[1:])


@settings(max_examples=100)
@given(data=st.data(), observed=st.sampled_from(AGENT_STATES[:4]), desired=st.sampled_from(DESIRED))
def test_once_terminal_a_task_reports_nothing_more(data, observed, desired):
    seen = run_task(data, observed, desired)
    ended = [i for i, s in enumerate(seen) if s >= TERMINAL]
    if ended:
        assert ended[0] == len(seen) - 1, "the terminal state is the last one reported"


@given(
    step=st.sampled_from([Step.ACCEPT, Step.PREPARE, Step.START, Step.WAIT, Step.SHUTDOWN]),
    desired=st.sampled_from(DESIRED),
    data=st.data(),
)
def test_a_decision_is_never_behind_the_state_its_step_starts_from(step, desired, data):
    start = {Step.ACCEPT: pb.ASSIGNED, Step.PREPARE: pb.PREPARING, Step.START: pb.STARTING, Step.WAIT: pb.RUNNING, Step.SHUTDOWN: pb.RUNNING}[step]
    d = decide(step, desired, data.draw(outcomes_for(step)))
    assert d is None or d.state >= start


@given(step=st.sampled_from([Step.PREPARE, Step.START, Step.WAIT, Step.SHUTDOWN]), desired=st.sampled_from(DESIRED), err=st.text(min_size=1))
def test_every_executor_error_ends_the_task_and_keeps_the_reason(step, desired, err):
    d = decide(step, desired, Failed(err))
    assert d is not None and d.state in (pb.FAILED, pb.REJECTED) and d.err == err
    assert (d.state == pb.REJECTED) == (step is Step.PREPARE), "only a task that never started is rejected"


@settings(max_examples=100)
@given(data=st.data(), observed=st.sampled_from([pb.ASSIGNED, pb.ACCEPTED, pb.PREPARING, pb.STARTING, pb.RUNNING]))
def test_a_stop_request_ends_any_live_task_in_one_step(data, observed):
    step = next_step(pb.SHUTDOWN, observed)
    assert step is Step.SHUTDOWN
    d = decide(step, pb.SHUTDOWN, data.draw(outcomes_for(step)))
    assert d is not None and d.state >= TERMINAL
    assert next_step(pb.SHUTDOWN, forward(observed, d.state)) is Step.DONE


@given(desired=st.sampled_from(DESIRED), a=st.sampled_from(AGENT_STATES), b=st.sampled_from(AGENT_STATES))
def test_steps_never_go_back_as_the_task_moves_on(desired, a, b):
    order = list(Step)
    lo, hi = min(a, b), max(a, b)
    assert order.index(next_step(desired, lo)) <= order.index(next_step(desired, hi))
