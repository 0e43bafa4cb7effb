"""The convergence check behind `svc create` / `svc scale`, its docker-style lines, and the wait loop."""

from __future__ import annotations

from types import SimpleNamespace

import grpc
import pytest

from shoal.cli import progress
from shoal.cli.progress import SlotProgress, converged, render
from shoal.proto import types_pb2
from tests.fixtures.cli_fakes import FakeRpcError, FakeStub, run

S = types_pb2.ServiceSpec
R, SD = types_pb2.RUNNING, types_pb2.SHUTDOWN
SID = "svc0000000000000000000001"


def svc(mode: int = S.REPLICATED, replicas: int | None = 3) -> types_pb2.Service:
    spec = S(name="web", mode=mode)
    if replicas is not None:
        spec.replicas = replicas
    return types_pb2.Service(id=SID, spec=spec)


def t(slot: int, state: int, desired: int = R, node: str = "n1", err: str = "", created: int = 1) -> types_pb2.Task:
    return types_pb2.Task(
        id=f"t{slot}{state}{created}",
        service_id=SID,
        slot=slot,
        node_id=node,
        desired_state=desired,
        status=types_pb2.TaskStatus(state=state, err=err),
        meta=types_pb2.Meta(created_at_ns=created),
    )


def test_replicated_converges_when_every_slot_runs() -> None:
    done, lines = converged(svc(), [t(1, R), t(2, R), t(3, types_pb2.STARTING)])
    assert not done
    assert [(s.label, s.state, s.done) for s in lines] == [
        ("1/3", "running", True),
        ("2/3", "running", True),
        ("3/3", "starting", False),
    ]
    done, _ = converged(svc(), [t(1, R), t(2, R), t(3, R)])
    assert done


def test_default_replicas_is_one_and_missing_slots_are_blank() -> None:
    done, lines = converged(svc(replicas=None), [])
    assert not done and lines == [SlotProgress("1/1", total=9)]
    assert converged(svc(replicas=None), [t(1, R)])[0]


def test_scale_down_waits_for_extra_tasks_to_stop() -> None:
    tasks = [t(1, R), t(2, R), t(3, R, desired=SD)]
    assert not converged(svc(replicas=2), tasks)[0]
    tasks[2].status.state = types_pb2.SHUTDOWN
    assert converged(svc(replicas=2), tasks)[0]
    assert converged(svc(replicas=0), [t(1, types_pb2.SHUTDOWN, desired=SD)]) == (True, [])


def test_an_update_does_not_wait_for_replaced_tasks_to_stop() -> None:
    """As docker's: once every slot runs its new task, the old ones (stopping out of their grace
    period) do not hold the wait; a task still running above the last slot (a scale-down) does."""
    old = [t(i, R, desired=SD, created=1) for i in (1, 2)]
    new = [t(i, R, created=2) for i in (1, 2)]
    assert converged(svc(replicas=2), old + new)[0]
    new[1].status.state = types_pb2.STARTING
    assert not converged(svc(replicas=2), old + new)[0], "slot 2's new task is not running yet"
    new[1].status.state = R
    assert not converged(svc(replicas=2), [*old, *new, t(3, R, desired=SD)])[0]


def test_failed_task_shows_its_error_until_replaced() -> None:
    failed = t(1, types_pb2.FAILED, err="task: non-zero exit (1)")
    done, lines = converged(svc(replicas=1), [failed])
    assert not done and lines[0].render() == "1/1: task: non-zero exit (1)"
    # the orchestrator shuts the failed task down and starts a new one: the new one is shown
    failed.desired_state = SD
    done, lines = converged(svc(replicas=1), [failed, t(1, types_pb2.PREPARING, created=2)])
    assert not done and lines[0].state == "preparing" and not lines[0].error


def test_pending_task_shows_why_it_is_not_placed() -> None:
    pending = t(1, types_pb2.PENDING, node="", err="no suitable node (1 node lacks 1GiB memory)")
    _, lines = converged(svc(replicas=1), [pending])
    assert lines[0].render() == "1/1: no suitable node (1 node lacks 1GiB memory)"


def test_global_uses_every_node_and_the_desired_count() -> None:
    g = svc(mode=S.GLOBAL, replicas=None)
    tasks = [t(0, R, node="nodeaaaaaaaaaaaaaaaaaaaaa"), t(0, R, node="nodebbbbbbbbbbbbbbbbbbbbb")]
    done, lines = converged(g, tasks)
    assert done and [s.label for s in lines] == ["nodeaaaaaaaa", "nodebbbbbbbb"]
    assert not converged(g, tasks, desired=3)[0]
    tasks.append(t(0, R, desired=SD, node="nodeccccccccccccccccccccc"))  # still running on a drained node
    assert not converged(g, tasks, desired=2)[0]
    tasks[-1].node_id = "nodeaaaaaaaaaaaaaaaaaaaaa"  # instead: replaced on its node (a rolling update), stopping
    assert converged(g, tasks, desired=2)[0]


def test_replicated_job_counts_completions() -> None:
    job = svc(mode=S.REPLICATED_JOB, replicas=2)
    done, lines = converged(job, [t(1, types_pb2.COMPLETE, desired=SD), t(2, R)])
    assert not done and [s.state for s in lines] == ["complete", "running"]
    assert converged(job, [t(1, types_pb2.COMPLETE), t(2, types_pb2.COMPLETE)])[0]
    assert render(job.spec, converged(job, [t(1, types_pb2.COMPLETE)])[1])[0] == "job progress: 1 out of 2 complete"


def test_global_job() -> None:
    job = svc(mode=S.GLOBAL_JOB, replicas=None)
    assert converged(job, [t(0, types_pb2.COMPLETE, node="a"), t(0, types_pb2.COMPLETE, node="b")], desired=2)[0]
    assert not converged(job, [t(0, types_pb2.COMPLETE, node="a"), t(0, R, node="b")], desired=2)[0]


def test_render_lines_like_docker() -> None:
    _, lines = converged(svc(), [t(1, R), t(2, types_pb2.PREPARING), t(3, types_pb2.PENDING)])
    out = render(svc().spec, lines)
    assert out[0] == "overall progress: 1 out of 3 tasks"
    assert out[1] == "1/3: running   [" + "=" * 50 + ">]"
    assert out[2] == "2/3: preparing [" + "=" * 33 + ">" + " " * 17 + "]"
    assert out[3].startswith("3/3: pending   [================>")


def test_many_replicas_show_only_the_overall_line() -> None:
    big = svc(replicas=25)
    _, lines = converged(big, [t(i, R) for i in range(1, 26)])
    assert render(big.spec, lines) == ["overall progress: 25 out of 25 tasks"]


@pytest.mark.timeout(10)
def test_wait_polls_until_converged(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeStub()
    fake.auto_run = False
    service = fake.add_service(S(name="web", replicas=1), sid=SID)
    polls = []

    def sleep(_: float) -> None:
        polls.append(1)
        state = [types_pb2.PENDING, types_pb2.STARTING, R][min(len(polls), 2)]
        fake.run_tasks(service)
        for task in fake.tasks:
            task.status.state = state

    monkeypatch.setattr(progress.time, "sleep", sleep)
    result = run(fake, "svc", "scale", "web=1")
    assert result.exit_code == 0, result.output
    assert len(polls) >= 2
    out = result.stdout.splitlines()
    # without a terminal each line is printed again when it changed (docker's plain progress)
    assert out[0] == "web scaled to 1" and out[1] == "overall progress: 0 out of 1 tasks"
    assert out[-3:] == ["overall progress: 1 out of 1 tasks", "1/1: running   [" + "=" * 50 + ">]", "verify: Service converged"]
    assert any(line.startswith("1/1: starting") for line in out), "the states it went through are shown as they came"
    assert len(out) == len(set(out)), "an unchanged line is not printed twice"


def test_wait_timeout_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeStub()
    fake.auto_run = False
    fake.add_service(S(name="web", replicas=1), sid=SID)
    monkeypatch.setattr(progress.time, "sleep", lambda _: None)
    monkeypatch.setenv("SHOAL_CONVERGE_TIMEOUT", "0")
    result = run(fake, "svc", "scale", "web=1")
    assert result.exit_code == 1
    assert "did not converge within 0s" in result.output


@pytest.mark.timeout(10)
def test_ctrl_c_leaves_the_operation_running(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeStub()
    fake.auto_run = False
    fake.add_service(S(name="web", replicas=1), sid=SID)

    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(progress.time, "sleep", interrupt)
    result = run(fake, "svc", "scale", "web=1")
    assert result.exit_code == 0
    assert "Operation continuing in background." in result.stdout


def test_service_removed_while_waiting() -> None:
    fake = FakeStub()
    fake.auto_run = False
    fake.fail["GetService"] = [FakeRpcError(grpc.StatusCode.NOT_FOUND, "no such service: x")]
    result = run(fake, "svc", "create", "nginx")
    assert result.exit_code == 1 and "was removed while waiting" in result.output


def test_slot_waiting_out_its_restart_delay_still_shows_the_failure() -> None:
    # the failed task is already shut down and its replacement is not created yet
    failed = t(1, types_pb2.FAILED, desired=SD, err="task: non-zero exit (3)")
    done, lines = converged(svc(replicas=2), [failed, t(2, R)])
    assert not done
    assert [s.render() for s in lines][0] == "1/2: task: non-zero exit (3)"
    assert lines[1].state == "running"


def test_scaled_down_slots_do_not_come_back_as_lines() -> None:
    tasks = [t(1, R), t(2, types_pb2.SHUTDOWN, desired=SD), t(3, types_pb2.FAILED, desired=SD, err="boom")]
    done, lines = converged(svc(replicas=1), tasks)
    assert done and [s.label for s in lines] == ["1/1"]


def test_global_node_in_restart_delay_is_shown_but_does_not_block() -> None:
    g = svc(mode=S.GLOBAL, replicas=None)
    tasks = [t(0, R, node="a"), t(0, types_pb2.FAILED, desired=SD, node="b", err="exit 1")]
    done, lines = converged(g, tasks, desired=2)
    assert not done and [s.render() for s in lines][1] == "b: exit 1"
    assert converged(g, tasks, desired=1)[0]


class _Display:
    """Stands in for the rich display: records each redraw and whether it was stopped."""

    def __init__(self) -> None:
        self.frames: list[list[str]] = []
        self.stopped = 0

    def stop(self) -> None:
        self.stopped += 1


def test_a_terminal_redraws_only_when_the_lines_change_and_stops_the_display(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeStub()
    fake.auto_run = False
    service = fake.add_service(S(name="web", replicas=1), sid=SID)
    display = _Display()
    monkeypatch.setattr(progress, "_live", lambda: display)
    monkeypatch.setattr(progress, "_show", lambda live, text: live.frames.append(list(text)))
    monkeypatch.setattr(progress, "sys", SimpleNamespace(stdout=SimpleNamespace(isatty=lambda: True)))
    polls: list[int] = []

    def sleep(_: float) -> None:
        polls.append(1)
        if len(polls) == 3:  # two polls with no task at all, then it runs
            fake.run_tasks(service)

    monkeypatch.setattr(progress.time, "sleep", sleep)
    result = run(fake, "svc", "scale", "web=1")
    assert result.exit_code == 0, result.output
    assert len(polls) == 3
    assert len(display.frames) == 2, "an unchanged display is not redrawn"
    assert display.frames[-1][-1] == "1/1: running   [" + "=" * 50 + ">]"
    assert display.stopped == 1
    assert result.stdout.splitlines()[-1] == "verify: Service converged"
    assert "overall progress" not in result.stdout, "on a terminal the lines are drawn by the display, not echoed"


def test_an_update_waiting_out_its_monitor_asks_for_the_state_alone_and_ends_when_it_completes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeStub()
    service = fake.add_service(S(name="web", replicas=2), sid=SID)  # both tasks run: converged
    service.update_status.state = types_pb2.UpdateStatus.UPDATING
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:  # the monitoring period ends during the third short sleep
            service.update_status.state = types_pb2.UpdateStatus.COMPLETED

    monkeypatch.setattr(progress.client, "stub", lambda: fake)
    progress.wait(SID, quiet=True, sleep=sleep)
    assert slept == [progress.STATE_POLL] * 3, "no whole poll interval is slept once the state changed"
    assert len(fake.called("ListTasks")) == 2, "the tasks are read again only when the state changed"


def test_a_task_update_not_yet_converged_polls_the_tasks_every_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeStub()
    fake.auto_run = False
    service = fake.add_service(S(name="web", replicas=1), sid=SID)
    service.update_status.state = types_pb2.UpdateStatus.UPDATING
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        fake.run_tasks(service)
        service.update_status.state = types_pb2.UpdateStatus.COMPLETED

    monkeypatch.setattr(progress.client, "stub", lambda: fake)
    progress.wait(SID, quiet=True, sleep=sleep)
    assert slept == [progress.POLL_INTERVAL]


def test_a_long_or_multiline_task_error_fits_one_line_as_dockers() -> None:
    long = "exec: " + "x" * 100
    assert SlotProgress("1/1", error=long).render() == "1/1: " + long[:74] + "…"
    assert SlotProgress("1/1", error="line one\nline two").render() == "1/1: line one line two"
    assert SlotProgress("1/1", error="task: non-zero exit (1)").render() == "1/1: task: non-zero exit (1)"


def test_an_update_that_converged_then_lost_a_task_says_so_as_docker() -> None:
    US = types_pb2.UpdateStatus
    updating = US(state=US.UPDATING)
    assert progress.verdict(updating, True, False).note == progress.VERIFYING
    assert progress.verdict(updating, False, False, verifying=True).note == progress.FAILURE_SEEN
    assert progress.verdict(updating, False, False).note == "", "not converged yet: nothing to verify"
    notes = progress._noted([], progress.VERIFYING)
    notes = progress._noted(notes, progress.FAILURE_SEEN)
    assert notes == [progress.FAILURE_SEEN], "the verify line changes; it is not shown twice"
    assert progress._noted(["rollback: why"], progress.VERIFYING) == ["rollback: why", progress.VERIFYING]


def test_an_update_this_wait_followed_ends_when_it_completes_even_with_tasks_failing() -> None:
    """docker's ServiceProgress returns once the update completed (failure action continue), converged or not;
    a completed state from an earlier update (a `svc scale` after it) still waits for convergence."""
    US = types_pb2.UpdateStatus
    completed = US(state=US.COMPLETED)
    assert progress.verdict(completed, False, False, followed=True).done
    assert not progress.verdict(completed, False, False).done
    assert progress.verdict(completed, True, False).done
