"""One task on the agent: the controller performs the steps and reports what the pure machine decides.

Driven on the in-memory executor; every wait is on an event or the task's own run, never a bare sleep.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.proto import types_pb2 as pb
from shoal.worker.controller import TaskController
from shoal.worker.executor import ExecutorError, Exit
from shoal.worker.executor_fake import FakeExecutor
from shoal.worker.taskstate import BackwardsTransition, Status


class RecordingExecutor(FakeExecutor):
    """The fake executor, recording every call; ``gate_start`` holds start until it is set."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []
        self.gate_start: asyncio.Event | None = None
        self.in_start = asyncio.Event()
        self.wait_error: str | None = None

    async def prepare(self, task: pb.Task) -> None:
        self.calls.append(("prepare", task.id))
        await super().prepare(task)

    async def start(self, task: pb.Task) -> int:
        self.calls.append(("start", task.id))
        self.in_start.set()
        if self.gate_start is not None:
            await self.gate_start.wait()
        return await super().start(task)

    async def wait(self, task_id: str) -> Exit:
        if self.wait_error is not None:
            raise ExecutorError(self.wait_error)
        return await super().wait(task_id)

    async def stop(self, task_id: str, grace_s: float | None) -> None:
        self.calls.append(("stop", task_id, grace_s))
        await super().stop(task_id, grace_s)

    async def remove(self, task_id: str) -> None:
        self.calls.append(("remove", task_id))
        await super().remove(task_id)

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


def make_task(labels: dict[str, str] | None = None, desired: int = pb.RUNNING, state: int = pb.ASSIGNED, grace_s: float = 0) -> pb.Task:
    t = pb.Task(id="t1", service_id="s", service_name="web", slot=1, desired_state=desired)
    t.spec.container.labels.update(labels or {})
    if grace_s:
        t.spec.container.stop_grace_period_ns = int(grace_s * 1e9)
    t.status.state = state
    return t


class Run:
    """A controller running as a task, with the statuses it reported."""

    def __init__(self, task: pb.Task, executor: FakeExecutor | None = None, observed: int | None = None) -> None:
        self.reports: list[pb.TaskStatus] = []
        self.executor = executor or RecordingExecutor()
        self.ctl = TaskController(task, self.executor, lambda tid, st: self.reports.append(st), observed=observed)
        self.task: asyncio.Task | None = None

    def start(self) -> Run:
        self.task = asyncio.create_task(self.ctl.run())
        return self

    async def until(self, state: int, timeout: float = 5) -> None:
        async def reached() -> None:
            while not self.reports or self.reports[-1].state < state:
                await asyncio.sleep(0.001)

        await asyncio.wait_for(reached(), timeout)

    async def finish(self, timeout: float = 5) -> list[int]:
        assert self.task is not None
        await asyncio.wait_for(self.task, timeout)
        return self.states

    def desire(self, desired: int) -> None:
        t = pb.Task()
        t.CopyFrom(self.ctl.task)
        t.desired_state = desired
        self.ctl.update(t)

    @property
    def states(self) -> list[int]:
        return [r.state for r in self.reports]


LIFECYCLE = [pb.ACCEPTED, pb.PREPARING, pb.STARTING, pb.RUNNING]


# ---- the lifecycle ----------------------------------------------------------------------------------


async def test_a_task_runs_to_completion_and_reports_each_state():
    run = Run(make_task({"fake.run_s": "0.01"})).start()
    assert await run.finish() == LIFECYCLE + [pb.COMPLETE]
    assert [r.message for r in run.reports] == ["accepted", "preparing", "starting", "started", "finished"]
    assert run.executor.names() == ["prepare", "start"]


async def test_reports_carry_the_pid_and_the_container_once_it_exists():
    run = Run(make_task({"fake.run_s": "0.01"})).start()
    await run.finish()
    by_state = {r.state: r for r in run.reports}
    assert by_state[pb.RUNNING].pid > 0
    assert by_state[pb.PREPARING].container_id == "" and by_state[pb.STARTING].container_id == "t1"
    assert all(r.timestamp_ns > 0 for r in run.reports)


async def test_a_non_zero_exit_fails_with_the_code():
    run = Run(make_task({"fake.run_s": "0.01", "fake.exit_code": "3"})).start()
    assert (await run.finish())[-1] == pb.FAILED
    assert run.reports[-1].exit_code == 3 and run.reports[-1].err == "task: non-zero exit (3)"


async def test_an_oom_kill_fails_the_task_and_says_so():
    run = Run(make_task({"fake.run_s": "0.01", "fake.exit_code": "137", "fake.oom_killed": "true"})).start()
    assert (await run.finish())[-1] == pb.FAILED
    assert run.reports[-1].err == "task: non-zero exit (137): OOM killed"


async def test_a_task_that_cannot_be_prepared_is_rejected_and_never_started():
    run = Run(make_task({"fake.fail_prepare": "image busybox:9 not found on node n1"})).start()
    assert await run.finish() == [pb.ACCEPTED, pb.PREPARING, pb.REJECTED]
    assert run.reports[-1].err == "image busybox:9 not found on node n1"
    assert run.executor.names() == ["prepare"] and not run.ctl.container


async def test_a_start_error_fails_the_task_with_the_reason():
    run = Run(make_task({"fake.fail_start": "exec: nosuch: not found"})).start()
    assert await run.finish() == LIFECYCLE[:3] + [pb.FAILED]
    assert run.reports[-1].err == "exec: nosuch: not found"


async def test_a_wait_that_errs_fails_the_task():
    ex = RecordingExecutor()
    ex.wait_error = "no such container: t1"
    run = Run(make_task(), ex).start()
    assert (await run.finish())[-1] == pb.FAILED
    assert run.reports[-1].err == "no such container: t1"


# ---- stopping --------------------------------------------------------------------------------------


async def test_a_stop_request_stops_a_running_task_with_its_grace():
    run = Run(make_task(grace_s=7)).start()
    await run.until(pb.RUNNING)
    run.desire(pb.SHUTDOWN)
    assert (await run.finish())[-2:] == [pb.RUNNING, pb.SHUTDOWN]
    assert ("stop", "t1", 7.0) in run.executor.calls
    assert run.reports[-1].message == "shutdown"


async def test_a_stop_request_while_starting_lets_start_finish_then_stops():
    ex = RecordingExecutor()
    ex.gate_start = asyncio.Event()
    run = Run(make_task(), ex).start()
    await asyncio.wait_for(ex.in_start.wait(), 5)
    run.desire(pb.SHUTDOWN)
    ex.gate_start.set()
    assert await run.finish() == LIFECYCLE + [pb.SHUTDOWN]
    assert ex.names() == ["prepare", "start", "stop"]


async def test_a_task_stopped_before_it_was_accepted_never_gets_a_container():
    run = Run(make_task(desired=pb.SHUTDOWN)).start()
    assert await run.finish() == [pb.SHUTDOWN]
    assert run.executor.calls == []


async def test_a_task_to_remove_is_shut_down_like_a_stop():
    run = Run(make_task()).start()
    await run.until(pb.RUNNING)
    run.desire(pb.REMOVE)
    assert (await run.finish())[-1] == pb.SHUTDOWN


async def test_a_newer_task_version_that_still_wants_it_running_changes_nothing():
    run = Run(make_task()).start()
    await run.until(pb.RUNNING)
    run.desire(pb.RUNNING)  # the manager sent the task again (a label changed, say)
    await asyncio.sleep(0.02)
    assert run.states == LIFECYCLE and not run.task.done()
    run.desire(pb.SHUTDOWN)
    await run.finish()


# ---- health ----------------------------------------------------------------------------------------


def with_health(task: pb.Task, retries: int = 1) -> pb.Task:
    hc = task.spec.container.healthcheck
    hc.test.extend(["CMD", "probe"])
    hc.interval_ns = hc.start_interval_ns = 5_000_000
    hc.retries = retries
    return task


async def test_an_unhealthy_container_is_stopped_and_the_task_fails():
    run = Run(with_health(make_task({"fake.health": "unhealthy"}, grace_s=2))).start()
    assert (await run.finish())[-1] == pb.FAILED
    assert run.reports[-1].err == "task: unhealthy container"
    assert ("stop", "t1", 2.0) in run.executor.calls
    unhealthy = [r for r in run.reports if r.health == pb.HEALTH_UNHEALTHY]
    # never healthy: it stays STARTING (SwarmKit's rule) until it fails
    assert unhealthy and unhealthy[0].state == pb.STARTING and unhealthy[0].err == "health check: fake: unhealthy"
    assert pb.RUNNING not in [r.state for r in run.reports]


async def test_a_task_with_a_health_check_is_starting_until_its_first_healthy_probe():
    run = Run(with_health(make_task())).start()

    async def healthy() -> None:
        while not any(r.health == pb.HEALTH_HEALTHY for r in run.reports):
            await asyncio.sleep(0.001)

    await asyncio.wait_for(healthy(), 5)
    first = next(i for i, r in enumerate(run.reports) if r.pid)
    started = run.reports[first:]  # from the moment its container runs
    assert [(r.state, r.health) for r in started] == [
        (pb.STARTING, pb.HEALTH_NONE), (pb.STARTING, pb.HEALTH_STARTING), (pb.RUNNING, pb.HEALTH_HEALTHY),
    ]  # fmt: skip
    assert started[-1].timestamp_ns >= started[0].timestamp_ns, "running since it became healthy"
    assert len({r.timestamp_ns for r in started[:2]}) == 1, "a health change while starting is not a new state"
    run.desire(pb.SHUTDOWN)
    await run.finish()
    assert run.reports[-1].health == pb.HEALTH_NONE, "health is shown only on a running task"


async def test_unhealthy_while_stopping_does_not_fail_the_task():
    run = Run(with_health(make_task({"fake.health": "unhealthy"}), retries=1000)).start()
    await run.until(pb.STARTING)
    run.desire(pb.SHUTDOWN)
    assert (await run.finish())[-1] == pb.SHUTDOWN


# ---- adoption, lost, removal --------------------------------------------------------------------


async def test_an_adopted_running_task_only_waits():
    ex = RecordingExecutor()
    task = make_task({"fake.run_s": "0.02"}, state=pb.RUNNING)
    await FakeExecutor.prepare(ex, task)
    await FakeExecutor.start(ex, task)  # the container an earlier agent run left behind
    run = Run(task, ex, observed=pb.RUNNING)
    run.ctl.container = True
    run.start()
    assert await run.finish() == [pb.COMPLETE]
    assert ex.calls == [], "an adopted container is neither prepared nor started again"
    assert run.reports[-1].container_id == "t1"


async def test_a_lost_container_fails_its_task():
    run = Run(make_task(state=pb.RUNNING), observed=pb.RUNNING)
    run.ctl.lost("container lost while the agent was down")
    assert run.states == [pb.FAILED] and run.reports[0].err == "container lost while the agent was down"
    run.ctl.lost("again")
    assert run.states == [pb.FAILED], "an ended task is not failed twice"


async def test_removing_a_running_task_stops_it_with_its_grace_and_deletes_it():
    run = Run(make_task(grace_s=4)).start()
    await run.until(pb.RUNNING)
    await run.ctl.remove()
    assert run.executor.calls[-2:] == [("stop", "t1", 4.0), ("remove", "t1")]
    assert await run.executor.list() == []
    run.task.cancel()


async def test_removing_an_ended_task_deletes_its_container_at_once():
    run = Run(make_task({"fake.run_s": "0.001", "fake.exit_code": "1"}, grace_s=4)).start()
    await run.finish()
    await run.ctl.remove()
    assert run.executor.calls[-2:] == [("stop", "t1", 0.0), ("remove", "t1")]


async def test_removing_a_task_that_was_never_prepared_calls_nothing():
    run = Run(make_task(), observed=pb.ACCEPTED)  # left the assignments before its prepare step
    await run.ctl.remove()
    assert run.executor.calls == []


async def test_a_report_that_would_move_back_is_a_bug():
    run = Run(make_task(state=pb.RUNNING), observed=pb.RUNNING)
    with pytest.raises(BackwardsTransition):
        run.ctl._set(Status(pb.STARTING, "starting"))
    assert run.reports == []


async def test_a_cancelled_controller_leaves_no_wait_behind():
    run = Run(with_health(make_task())).start()
    await run.until(pb.RUNNING)
    run.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run.task
    await asyncio.sleep(0)
    assert run.ctl._health is not None and run.ctl._health.done()


# ---- property: any scenario, the reports only move forward and end in one terminal state ------------

TERMINAL_STATES = {pb.COMPLETE, pb.SHUTDOWN, pb.FAILED, pb.REJECTED}


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, str], float, bool]:
    labels: dict[str, str] = {}
    if draw(st.booleans()):
        labels["fake.run_s"] = str(draw(st.sampled_from([0.0, 0.002, 0.01])))
        labels["fake.exit_code"] = str(draw(st.sampled_from([0, 1, 137])))
        if draw(st.booleans()):
            labels["fake.oom_killed"] = "true"
    for key, err in (("fake.fail_prepare", "no such image"), ("fake.fail_start", "exec: not found")):
        if draw(st.integers(0, 3)) == 0:
            labels[key] = err
    health = draw(st.sampled_from([None, "healthy", "unhealthy"]))
    if health is not None:
        labels["fake.health"] = health
    return labels, draw(st.sampled_from([0.0, 0.003, 0.02])), health is not None


@settings(max_examples=40, deadline=None)
@given(scenario=scenarios())
def test_any_scenario_reports_forward_only_and_ends_in_one_terminal_state(scenario):
    labels, stop_after, checked = scenario

    async def go() -> list[pb.TaskStatus]:
        t = make_task(labels)
        if checked:
            with_health(t)
        run = Run(t).start()
        await asyncio.sleep(stop_after)
        run.desire(pb.SHUTDOWN)
        await run.finish()
        return run.reports

    reports = asyncio.run(go())
    states = [r.state for r in reports]
    assert states == sorted(states), "observed state never moves back"
    assert states[-1] in TERMINAL_STATES and sum(s in TERMINAL_STATES for s in states) == 1
    assert states[0] in (pb.ACCEPTED, pb.SHUTDOWN)
    for r in reports:
        if r.state in (pb.FAILED, pb.REJECTED):
            assert r.err, "a task that ended in an error says why"
        if r.state == pb.REJECTED:
            assert labels.get("fake.fail_prepare") and pb.STARTING not in states


def test_a_task_serving_through_the_mesh_drains_before_it_is_stopped():
    from shoal.worker.taskstate import DRAIN_S, drain_s

    plain = make_task()
    published = make_task()
    published.spec.ports.add(target_port=80, published_port=8080)
    networked = make_task()
    networked.networks.add(network="front", address="10.0.1.5/24")
    assert drain_s(plain, pb.RUNNING) == 0.0, "nothing routes to it: it stops at once"
    assert drain_s(published, pb.RUNNING) == drain_s(networked, pb.RUNNING) == DRAIN_S
    assert drain_s(published, pb.PREPARING) == 0.0, "never served: nothing to drain"


async def test_a_published_task_keeps_running_for_the_drain_then_stops(monkeypatch):
    from shoal.worker import taskstate

    monkeypatch.setattr(taskstate, "DRAIN_S", 0.2)
    task = make_task()
    task.spec.ports.add(target_port=80, published_port=8080)
    run = Run(task).start()
    await run.until(pb.RUNNING)
    loop = asyncio.get_running_loop()
    asked = loop.time()
    run.desire(pb.SHUTDOWN)
    assert (await run.finish())[-1] == pb.SHUTDOWN
    assert loop.time() - asked >= 0.2
