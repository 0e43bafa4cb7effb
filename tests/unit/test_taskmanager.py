"""The tasks an agent holds: assignment sets become controllers, adoption after a restart, cleanup on stop.

On the in-memory executor; statuses are collected from the report callback the reporter would get.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from structlog.testing import capture_logs

from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.worker.executor_fake import FakeExecutor
from shoal.worker.taskmanager import STOP_ROUNDS, StopIncomplete, TaskManager


class Executor(FakeExecutor):
    """The fake executor, recording stops and removals."""

    def __init__(self) -> None:
        super().__init__()
        self.stops: list[tuple[str, float | None]] = []
        self.removals: list[str] = []

    async def stop(self, task_id: str, grace_s: float | None) -> None:
        self.stops.append((task_id, grace_s))
        await super().stop(task_id, grace_s)

    async def remove(self, task_id: str) -> None:
        self.removals.append(task_id)
        await super().remove(task_id)


def task(
    tid: str, desired: int = pb.RUNNING, state: int = pb.ASSIGNED, labels: dict[str, str] | None = None
) -> pb.Task:
    t = pb.Task(id=tid, service_id="s", service_name="web", desired_state=desired)
    t.status.state = state
    t.spec.container.labels.update(labels or {})
    return t


class Node:
    """A task manager with its executor and the statuses reported per task."""

    def __init__(self, executor: Executor | None = None) -> None:
        self.executor = executor or Executor()
        self.reports: dict[str, list[pb.TaskStatus]] = {}
        self.tm = TaskManager(self.executor, lambda tid, st: self.reports.setdefault(tid, []).append(st))

    def state(self, tid: str) -> int:
        return self.reports[tid][-1].state if self.reports.get(tid) else pb.ASSIGNED

    async def until(self, ok: Callable[[], bool], timeout: float = 5) -> None:
        async def poll() -> None:
            while not ok():
                await asyncio.sleep(0.002)

        await asyncio.wait_for(poll(), timeout)


def full(*tasks: pb.Task) -> dpb.Assignments:
    return dpb.Assignments(full=True, updated=list(tasks))


async def test_a_full_set_starts_a_controller_per_task_and_runs_them():
    n = Node()
    n.tm.apply(full(task("a"), task("b")))
    await n.until(lambda: n.state("a") == pb.RUNNING and n.state("b") == pb.RUNNING)
    assert set(n.tm.controllers) == {"a", "b"} and sorted(n.executor.started) == ["a", "b"]
    await n.tm.stop_all()


async def test_a_newer_version_with_a_stop_request_shuts_the_task_down():
    n = Node()
    n.tm.apply(full(task("a")))
    await n.until(lambda: n.state("a") == pb.RUNNING)
    n.tm.apply(dpb.Assignments(updated=[task("a", desired=pb.SHUTDOWN)]))
    await n.until(lambda: n.state("a") == pb.SHUTDOWN)
    assert "a" in n.tm.controllers, "a shut-down task stays held until the manager removes it"
    await n.tm.stop_all()


async def test_a_removed_task_is_stopped_and_its_container_deleted():
    n = Node()
    n.tm.apply(full(task("a"), task("b")))
    await n.until(lambda: n.state("a") == pb.RUNNING and n.state("b") == pb.RUNNING)
    n.tm.apply(dpb.Assignments(removed=["a"]))
    await n.until(lambda: "a" in n.executor.removals)
    assert "a" not in n.tm.controllers and await n.executor.list() == ["b"]
    await n.tm.stop_all()


async def test_a_later_full_set_drops_the_tasks_it_no_longer_lists():
    n = Node()
    n.tm.apply(full(task("a"), task("b")))
    await n.until(lambda: n.state("b") == pb.RUNNING)
    n.tm.apply(full(task("b"), task("c")))
    await n.until(lambda: "a" in n.executor.removals and n.state("c") == pb.RUNNING)
    assert set(n.tm.controllers) == {"b", "c"}
    await n.tm.stop_all()


async def test_stopping_the_agent_leaves_no_container_behind():
    n = Node()
    n.tm.apply(full(task("a"), task("b")))
    await n.until(lambda: n.state("a") == pb.RUNNING and n.state("b") == pb.RUNNING)
    await n.tm.stop_all()
    assert await n.executor.list() == [] and n.tm.controllers == {}
    assert sorted(n.executor.stops) == [("a", None), ("b", None)], "each container stops with its own grace"


class Flaky(Executor):
    """Stops fail ``fail`` times (a launcher connection that broke); a create lands late once."""

    def __init__(self, fail: int = 0, late: str = "") -> None:
        super().__init__()
        self.fail = fail
        self.late = late

    async def stop(self, task_id: str, grace_s: float | None) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionResetError("Connection lost")
        await super().stop(task_id, grace_s)

    async def list(self) -> list[str]:
        ids = await super().list()
        if self.late:  # a create sent before the stop began is served after the first list
            late, self.late = self.late, ""
            await self.prepare(task(late))
        return ids


async def test_a_stop_that_fails_is_tried_again_and_a_late_container_is_found():
    ex = Flaky(fail=2, late="late")
    n = Node(ex)
    n.tm.apply(full(task("a"), task("b")))
    await n.until(lambda: n.state("a") == pb.RUNNING and n.state("b") == pb.RUNNING)
    await n.tm.stop_all()
    assert await ex.list() == [] and set(ex.removals) == {"a", "b", "late"}


async def test_containers_that_will_not_stop_are_named():
    ex = Flaky(fail=10_000)
    n = Node(ex)
    n.tm.apply(full(task("a")))
    await n.until(lambda: n.state("a") == pb.RUNNING)
    with pytest.raises(StopIncomplete, match=r"1 container\(s\) still there after .* rounds: a"):
        await n.tm.stop_all()
    assert ex.fail == 10_000 - STOP_ROUNDS, "one try per round, then it gives up"


async def test_stopping_the_agent_also_deletes_containers_no_controller_holds():
    ex = Executor()
    await ex.prepare(task("stray"))
    n = Node(ex)
    await n.tm.stop_all()
    assert await ex.list() == []


# ---- adoption after a restart -----------------------------------------------------------------------


async def leftovers(ex: Executor, *tasks: pb.Task) -> None:
    """Containers an earlier run of the agent left running."""
    for t in tasks:
        await ex.prepare(t)
        await ex.start(t)
    ex.started.clear()


async def test_a_restarted_agent_re_attaches_to_running_containers_without_restarting_them():
    ex = Executor()
    await leftovers(ex, task("a"))
    n = Node(ex)
    await n.tm.load_leftovers()
    n.tm.apply(full(task("a", state=pb.RUNNING)))
    await asyncio.sleep(0.02)
    assert ex.started == [] and "a" in n.tm.controllers and n.tm.controllers["a"].observed == pb.RUNNING
    assert n.reports.get("a") is None, "nothing changed: nothing to report"
    await n.tm.stop_all()


async def test_containers_of_tasks_replaced_while_the_agent_was_away_are_deleted():
    ex = Executor()
    await leftovers(ex, task("old"), task("done"))
    n = Node(ex)
    await n.tm.load_leftovers()
    n.tm.apply(full(task("done", state=pb.COMPLETE), task("new")))
    await n.until(lambda: "old" in ex.removals and n.state("new") == pb.RUNNING)
    assert "old" not in n.tm.controllers
    assert "done" in n.tm.controllers and "done" not in ex.removals, "ended but still assigned: held, as a running agent holds it"
    assert "done" not in n.reports, "it ended before the agent died: nothing new to report"
    n.tm.apply(dpb.Assignments(removed=["done"]))
    await n.until(lambda: "done" in ex.removals)
    assert ("done", 0.0) in ex.stops, "an ended task's container is removed at once"
    await n.tm.stop_all()


async def test_a_task_whose_container_vanished_while_the_agent_was_down_fails():
    n = Node()
    await n.tm.load_leftovers()
    n.tm.apply(full(task("a", state=pb.RUNNING)))
    assert n.state("a") == pb.FAILED and n.reports["a"][-1].err == "container lost while the agent was down"
    assert n.executor.started == [], "a lost task is not started again: the manager replaces it"
    await n.tm.stop_all()


async def test_only_the_first_full_set_settles_leftovers():
    ex = Executor()
    await leftovers(ex, task("old"))
    n = Node(ex)
    await n.tm.load_leftovers()
    n.tm.apply(full())
    await n.until(lambda: "old" in ex.removals)
    await leftovers(ex, task("stray"))  # appears after the first full set: not an earlier run's
    n.tm.apply(full(task("b")))
    await n.until(lambda: n.state("b") == pb.RUNNING)
    assert "stray" not in ex.removals
    await n.tm.stop_all()


def checked(t: pb.Task) -> pb.Task:
    """``t`` with a health check probed every 5 ms (through the fake executor's exec)."""
    t.spec.container.healthcheck.test.extend(["CMD", "probe"])
    t.spec.container.healthcheck.interval_ns = t.spec.container.healthcheck.start_interval_ns = 5_000_000
    t.spec.container.healthcheck.retries = 3
    return t


class Probed(Executor):
    """Health probes fail until ``ok`` is set, and are counted."""

    def __init__(self) -> None:
        super().__init__()
        self.ok = False
        self.probes = 0

    async def exec(self, task_id: str, args: list[str], timeout: float) -> tuple[int, bytes]:
        self.probes += 1
        return (0, b"ok") if self.ok else (1, b"not yet")


async def test_a_task_still_starting_is_adopted_starting_and_its_checks_run_again():
    """The agent died while the task's health check had not passed yet: the container is re-attached (not
    started again), the task is not reported RUNNING, its checks start over, and a passing one makes it RUNNING."""
    ex = Probed()
    await leftovers(ex, checked(task("a")))
    n = Node(ex)
    await n.tm.load_leftovers()
    n.tm.apply(full(checked(task("a", state=pb.STARTING))))
    await n.until(lambda: ex.probes >= 2)
    assert ex.started == [] and {r.state for r in n.reports.get("a", [])} <= {pb.STARTING}
    assert not n.tm.controllers["a"].healthy_once
    ex.ok = True
    await n.until(lambda: n.state("a") == pb.RUNNING)
    assert n.reports["a"][-1].health == pb.HEALTH_HEALTHY and ex.started == []
    await n.tm.stop_all()


async def test_a_task_the_cluster_saw_running_stays_running_when_adopted():
    ex = Probed()
    await leftovers(ex, checked(task("a")))
    n = Node(ex)
    await n.tm.load_leftovers()
    n.tm.apply(full(checked(task("a", state=pb.RUNNING))))
    await n.until(lambda: ex.probes >= 1)
    assert n.tm.controllers["a"].healthy_once and pb.STARTING not in {r.state for r in n.reports.get("a", [])}
    await n.tm.stop_all()


async def test_a_container_created_but_never_started_is_started_when_adopted():
    """The agent died in the middle of starting the task (the cluster heard STARTING): it is started now."""
    ex = Executor()
    await ex.prepare(task("a"))
    n = Node(ex)
    await n.tm.load_leftovers()
    n.tm.apply(full(task("a", state=pb.STARTING)))
    await n.until(lambda: n.state("a") == pb.RUNNING)
    assert ex.started == ["a"]
    await n.tm.stop_all()


async def test_an_incremental_set_before_the_first_full_one_does_not_adopt():
    ex = Executor()
    await leftovers(ex, task("a"))
    n = Node(ex)
    await n.tm.load_leftovers()
    n.tm.apply(dpb.Assignments(updated=[task("b")]))
    await n.until(lambda: n.state("b") == pb.RUNNING)
    n.tm.apply(full(task("a", state=pb.RUNNING), task("b")))
    await asyncio.sleep(0.02)
    assert n.tm.controllers["a"].observed == pb.RUNNING and "a" not in ex.started
    await n.tm.stop_all()


async def test_a_crashing_controller_is_logged_with_what_it_was_doing():
    class Broken(Executor):
        async def prepare(self, t: pb.Task) -> None:
            raise RuntimeError("bug in the executor")

    n = Node(Broken())
    with capture_logs() as logs:
        n.tm.apply(full(task("a")))
        await n.until(lambda: not n.tm._bg)
    crashes = [e for e in logs if e["event"] == "agent task crashed"]
    assert crashes and crashes[0]["what"] == "task a" and "bug in the executor" in crashes[0]["error"]
