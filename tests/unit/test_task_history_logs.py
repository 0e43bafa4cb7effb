"""An ended task's log stays on its node while the task is in the manager's task history (issue 13).

The dispatcher tells the node which of its tasks are in the history (``kept``) and which left the store
(``forgotten``); the agent's LogKeeper moves an ended task's log aside when the container is deleted, if
the task is kept, and deletes it when the task is forgotten, dropped from a full set, or the node stops.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.manager.dispatcher.assignments import AssignmentSet, kept
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.worker.executor_fake import FakeExecutor
from shoal.worker.logkeep import LogKeeper
from shoal.worker.taskmanager import TaskManager


def task(tid: str, desired: int = pb.RUNNING, service: str = "svc") -> pb.Task:
    return pb.Task(id=tid, node_id="n1", service_id=service, desired_state=desired)  # type: ignore[arg-type]


def diff(sent: AssignmentSet, tasks: dict[str, tuple[int, int]], full: bool = False) -> dpb.Assignments | None:
    """``tasks``: id -> (desired, observed state) of the node's tasks in the store."""
    return sent.diff([task(tid, d) for tid, (d, _) in tasks.items()], lambda t: tasks[t.id][1], lambda tid: 1, full)


def test_an_ended_task_leaves_the_set_into_the_history_and_is_forgotten_when_reaped() -> None:
    sent = AssignmentSet()
    msg = diff(sent, {"a": (pb.RUNNING, pb.RUNNING), "old": (pb.SHUTDOWN, pb.SHUTDOWN)}, full=True)
    assert msg is not None and [t.id for t in msg.updated] == ["a"] and list(msg.kept) == ["old"]
    msg = diff(sent, {"a": (pb.SHUTDOWN, pb.SHUTDOWN), "old": (pb.SHUTDOWN, pb.SHUTDOWN)})  # replaced by an update
    assert msg is not None and (list(msg.removed), list(msg.kept), list(msg.forgotten)) == (["a"], ["a"], [])
    assert diff(sent, {"a": (pb.SHUTDOWN, pb.SHUTDOWN), "old": (pb.SHUTDOWN, pb.SHUTDOWN)}) is None
    msg = diff(sent, {"a": (pb.SHUTDOWN, pb.SHUTDOWN)})  # the orchestrator reaped the oldest of the slot
    assert msg is not None and (list(msg.removed), list(msg.kept), list(msg.forgotten)) == ([], [], ["old"])
    msg = diff(sent, {"b": (pb.RUNNING, pb.RUNNING)})  # a task deleted while it ran: never in the history
    sent_b = diff(sent, {})
    assert msg is not None and list(msg.forgotten) == ["a"] and sent_b is not None
    assert (list(sent_b.removed), list(sent_b.forgotten), list(sent_b.kept)) == (["b"], ["b"], [])


def test_a_finished_job_task_is_history_and_a_pending_one_is_not() -> None:
    assert kept(task("t", pb.COMPLETE), pb.COMPLETE)
    assert not kept(task("t", pb.RUNNING), pb.COMPLETE), "ended but still wanted: the node holds it"
    assert not kept(task("t", pb.SHUTDOWN), pb.PENDING), "never reached the node"


# a task's life on the node, in order: not created yet, placed, running, asked to stop, stopped
# (history), deleted from the store; or a job's: ... running, complete (history), deleted
LIVES = ([None, (pb.RUNNING, pb.ASSIGNED), (pb.RUNNING, pb.RUNNING), (pb.SHUTDOWN, pb.RUNNING), (pb.SHUTDOWN, pb.SHUTDOWN), None],
         [None, (pb.RUNNING, pb.ASSIGNED), (pb.RUNNING, pb.RUNNING), (pb.RUNNING, pb.FAILED), (pb.COMPLETE, pb.COMPLETE), None])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([0, 1]), min_size=4, max_size=4),
       st.lists(st.tuples(st.lists(st.integers(0, 2), min_size=4, max_size=4), st.booleans()), min_size=1, max_size=10))
def test_the_node_always_knows_the_history_as_the_store_has_it(lives: list[int], steps: list[tuple[list[int], bool]]) -> None:
    """Whatever order the tasks live in, after each message the node's kept ids are exactly the store's
    history of its tasks (the agent applies messages as LogKeeper.apply does), a full set after a new
    session included, and no id of a task still in the store is ever forgotten."""
    sent, keeper, stage = AssignmentSet(), LogKeeper(None), [0, 0, 0, 0]
    for i, (moves, reconnect) in enumerate(steps):
        stage = [min(5, s + m) for s, m in zip(stage, moves, strict=True)]
        store = {f"t{n}": LIVES[lives[n]][s] for n, s in enumerate(stage) if LIVES[lives[n]][s] is not None}
        if reconnect:
            sent = AssignmentSet()  # a new session starts from nothing, with a full set
        msg = diff(sent, store, full=i == 0 or reconnect)  # type: ignore[arg-type]
        if msg is not None:
            assert not set(msg.forgotten) & set(store)
            keeper.apply(msg)
        assert keeper.history == {tid for tid, (d, s) in store.items() if kept(task(tid, d), s)}  # type: ignore[misc]


def write_log(path: Path, lines: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f'{{"log":"line {i}\\n","stream":"stdout","time":"2026-01-01T00:00:0{i}Z"}}\n' for i in range(lines)))


def test_the_keeper_moves_a_kept_log_aside_and_deletes_it_when_forgotten(tmp_path: Path) -> None:
    k = LogKeeper(str(tmp_path / "kept"))
    k.apply(dpb.Assignments(full=True, kept=["t1"]))
    write_log(tmp_path / "c1" / "ctr.log.1", 2)
    write_log(tmp_path / "c1" / "ctr.log", 1)
    write_log(tmp_path / "c2" / "ctr.log", 1)
    k.keep(task("t1"), [str(tmp_path / "c1" / "ctr.log.1"), str(tmp_path / "c1" / "ctr.log")])
    k.keep(task("t2"), [str(tmp_path / "c2" / "ctr.log")])  # not in the history: goes with its container
    assert k.log_path("t1") == str(tmp_path / "kept" / "t1" / "ctr.log") and k.log_path("t2") is None
    assert sorted(os.listdir(tmp_path / "kept" / "t1")) == ["ctr.log", "ctr.log.1", "task.pb"]
    assert not (tmp_path / "c1" / "ctr.log").exists() and (tmp_path / "c2" / "ctr.log").exists()
    again = LogKeeper(str(tmp_path / "kept"))  # the agent restarted: known again, with its service
    again.load()
    assert again.tasks["t1"].service_id == "svc"
    again.apply(dpb.Assignments(full=True))  # the first full set no longer lists it
    assert not (tmp_path / "kept" / "t1").exists() and again.log_path("t1") is None
    k.apply(dpb.Assignments(forgotten=["t1"]))
    assert not (tmp_path / "kept" / "t1").exists() and not k.tasks


def test_a_log_kept_after_its_task_was_forgotten_is_not_kept(tmp_path: Path) -> None:
    k = LogKeeper(str(tmp_path / "kept"))
    k.apply(dpb.Assignments(full=True, kept=["t1"]))
    k.apply(dpb.Assignments(forgotten=["t1"]))  # reaped while its container was still stopping
    write_log(tmp_path / "c1" / "ctr.log", 1)
    k.keep(task("t1"), [str(tmp_path / "c1" / "ctr.log")])
    assert k.log_path("t1") is None and not (tmp_path / "kept").exists()


def test_clear_removes_every_kept_log(tmp_path: Path) -> None:
    k = LogKeeper(str(tmp_path / "kept"))
    k.apply(dpb.Assignments(full=True, kept=["t1"]))
    write_log(tmp_path / "c1" / "ctr.log", 1)
    k.keep(task("t1"), [str(tmp_path / "c1" / "ctr.log")])
    k.clear()
    assert not (tmp_path / "kept").exists() and not k.tasks and not k.history


async def test_the_task_manager_keeps_the_log_of_a_task_that_leaves_into_the_history(tmp_path: Path) -> None:
    ex = FakeExecutor(log_dir=tmp_path)
    keeper = LogKeeper(ex.kept_logs_dir())
    tm = TaskManager(ex, lambda tid, st: None, keeper)
    t, other = task("t1"), task("t2")
    tm.apply(dpb.Assignments(full=True, updated=[t, other]))
    await _until(lambda: "t1" in ex.containers and "t2" in ex.containers)
    ex.write_log("t1", "done\n")
    ex.write_log("t2", "gone\n")
    for a in (dpb.Assignments(removed=["t1"], kept=["t1"]), dpb.Assignments(removed=["t2"], forgotten=["t2"])):
        keeper.apply(a)  # as the agent does, before the tasks
        tm.apply(a)
    await _until(lambda: not ex.containers)
    await _until(lambda: keeper.log_path("t1") is not None)
    assert Path(keeper.log_path("t1") or "").read_text().count('"done\\n"') == 1
    assert not (tmp_path / "t1").exists() and not (tmp_path / "t2").exists() and keeper.log_path("t2") is None
    await tm.stop_all()


async def test_a_restarted_agent_keeps_the_logs_of_ended_tasks_whose_containers_it_left(tmp_path: Path) -> None:
    """The agent was killed -9 after its tasks ended (the manager heard it) but before it deleted their
    containers. The restarted agent's first full set names "hist" in the history (it left the set while the
    agent was down) and still lists "late" (ended; not yet asked to stop): both logs stay for ``svc logs``,
    "hist" moved aside with its service (read from its container), "late" once it leaves the set too."""
    ex = FakeExecutor(log_dir=tmp_path)
    crashed = TaskManager(ex, lambda tid, st: None, LogKeeper(ex.kept_logs_dir()))
    crashed.apply(dpb.Assignments(full=True, updated=[task("hist"), task("late"), task("gone")]))
    await _until(lambda: len(ex.containers) == 3)
    for tid in ex.containers:
        ex.write_log(tid, f"from {tid}\n")
        ex._exit(tid, 1)
    for t in list(crashed._bg):  # kill -9: the containers stay, nothing is cleaned up
        t.cancel()
    keeper = LogKeeper(ex.kept_logs_dir())
    keeper.load()
    tm = TaskManager(ex, lambda tid, st: None, keeper)
    await tm.load_leftovers()
    late = task("late")
    late.status.state = pb.FAILED
    for a in (dpb.Assignments(full=True, updated=[late], kept=["hist"]), dpb.Assignments(removed=["late"], kept=["late"])):
        keeper.apply(a)  # as the agent does, before the tasks
        tm.apply(a)
        await _until(lambda: "hist" not in ex.containers and "gone" not in ex.containers)
    await _until(lambda: not ex.containers)
    assert sorted(keeper.tasks) == ["hist", "late"] and keeper.tasks["hist"].service_id == "svc"
    for tid in ("hist", "late"):
        assert Path(keeper.log_path(tid) or "").read_text().count(f'"from {tid}\\n"') == 1
    assert keeper.log_path("gone") is None and not (tmp_path / "gone").exists(), "not in the history: its log goes"
    keeper.apply(dpb.Assignments(forgotten=["hist", "late"]))  # reaped: deleted as any kept log
    assert not os.listdir(tmp_path / "kept")
    await tm.stop_all()


async def _until(cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)
