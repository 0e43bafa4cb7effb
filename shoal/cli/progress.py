"""Waiting for a service to converge after ``svc create`` / ``svc scale``, shown as docker shows it.

``converged`` is the pure decision (service + tasks -> done? + one line per slot), written after
docker's ``progress`` package: per slot it follows the task with the lowest desired state, then the
lowest observed state, so a restart shows the new task and a failure shows its error until the
orchestrator replaces it. ``wait`` polls the manager and renders the result: redrawn in place on a
terminal, and otherwise each line again when it changed, as docker's plain output does. A rolling
update or rollback is followed through its ``UpdateStatus`` (``verdict``): done when it completed,
an error when it paused or rolled back.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import click
import grpc

from shoal import ids, rollout
from shoal.cli import client
from shoal.cli.output import state_word
from shoal.proto import control_pb2, types_pb2
from shoal.taskstate import FAILED_STATES

TaskState = types_pb2.TaskState
ServiceSpec = types_pb2.ServiceSpec

POLL_INTERVAL = 0.2
STATE_POLL = 0.04
"""While an update only waits out its monitoring period, how often its state alone is asked for (see
``_until_state_changes``)."""
MAX_PROGRESS_BARS = 20  # as docker: more replicas than this and only the overall line is shown
STATE_WIDTH = len("preparing")
# docker's numberedStates; PENDING stands in for its "allocated"/"pending" and STARTING for "ready"/"starting"
_STEP = {
    TaskState.NEW: 1,
    TaskState.PENDING: 3,
    TaskState.ASSIGNED: 4,
    TaskState.ACCEPTED: 5,
    TaskState.PREPARING: 6,
    TaskState.STARTING: 8,
    TaskState.RUNNING: 9,
    TaskState.COMPLETE: 10,
}


@dataclass(frozen=True)
class SlotProgress:
    """One line of the display: "1/3: running   [====>]" or "1/3: task: non-zero exit (1)"."""

    label: str
    state: str = ""  # docker's lower-case state word; "" while the slot has no task yet
    step: int = 0
    total: int = 9
    error: str = ""
    done: bool = False

    def render(self) -> str:
        if self.error:
            return f"{self.label}: {short_error(self.error)}"
        if not self.state:
            return f"{self.label}: "
        pct = min(50, int(self.step / self.total * 100) // 2)
        bar = "[" + "=" * pct + ">" + " " * (50 - pct) + "]"
        return f"{self.label}: {self.state:<{STATE_WIDTH}} {bar}"


ERROR_WIDTH = 75


def short_error(err: str) -> str:
    """A task's error on one line of at most 75 characters, as docker's progress shows it (its truncError):
    a newline would break the display."""
    err = err.replace("\n", " ")
    return err if len(err) <= ERROR_WIDTH else err[: ERROR_WIDTH - 1] + "…"


def _pick(tasks: Iterable[types_pb2.Task]) -> types_pb2.Task | None:
    """docker's choice among a slot's tasks: lowest desired state, then lowest observed state."""
    best = None
    for t in tasks:
        key = (t.desired_state, _STEP.get(t.status.state, 99))
        if best is None or key < best[0] or (key == best[0] and t.meta.created_at_ns > best[1].meta.created_at_ns):
            best = (key, t)
    return best[1] if best else None


def _line(label: str, task: types_pb2.Task | None, goal: int) -> SlotProgress:
    if task is None:
        return SlotProgress(label, total=_STEP[goal])
    state = task.status.state
    done = goal == TaskState.COMPLETE and state == goal
    done = done or (goal == TaskState.RUNNING and task.desired_state == TaskState.RUNNING and rollout.ready(task.spec, task.status))
    err = task.status.err if (state in FAILED_STATES or state <= TaskState.PENDING) else ""
    if state in FAILED_STATES and not err:
        err = task.status.message or state_word(state)
    return SlotProgress(label, state_word(state), _STEP.get(state, 0), _STEP[goal], err, done)


def replicas_of(spec: types_pb2.ServiceSpec) -> int:
    return spec.replicas if spec.HasField("replicas") else 1


def converged(
    service: types_pb2.Service, tasks: Iterable[types_pb2.Task], desired: int | None = None
) -> tuple[bool, list[SlotProgress]]:
    """Whether ``service`` has converged, and the progress line of each slot (or node).

    Only tasks of the current spec count (``shoal.rollout.outdated``: a rolling update still replaces
    the others), and a running task counts once it is ready (healthy, when the service has a check).
    replicated: ``replicas`` slots each run a task whose desired state is RUNNING, and no task runs in a
    slot above ``replicas`` (a scale-down has finished). A task its slot's replacement took over from
    (a rolling update, a restart) may still be stopping: as docker's, the wait does not follow it. global: every task meant to
    run is running (and at least ``desired`` of them, the count of eligible nodes, when known).
    jobs: ``replicas`` slots (global: every node's task) have completed.
    """
    spec = service.spec
    tasks = [t for t in tasks if t.service_id == service.id or not t.service_id]
    mode = spec.mode
    if mode in (ServiceSpec.REPLICATED, ServiceSpec.GLOBAL):  # tasks a rolling update still has to replace do not count
        key = rollout.task_key(spec)
        tasks = [t for t in tasks if not (t.desired_state == TaskState.RUNNING and rollout.outdated(service, t, key))]
    if mode in (ServiceSpec.REPLICATED, ServiceSpec.REPLICATED_JOB):
        return _converged_replicated(spec, tasks, job=mode == ServiceSpec.REPLICATED_JOB)
    return _converged_global(tasks, desired, job=mode == ServiceSpec.GLOBAL_JOB)


def _failed_groups(
    tasks: list[types_pb2.Task], key: Callable[[types_pb2.Task], object]
) -> dict[object, list[types_pb2.Task]]:
    """Slots (or nodes) whose newest task failed. While the restart delay runs they have no task meant
    to run, and their line shows the failure (as docker's does) instead of going blank."""
    newest: dict[object, types_pb2.Task] = {}
    for t in tasks:
        k = key(t)
        if k not in newest or t.meta.created_at_ns > newest[k].meta.created_at_ns:
            newest[k] = t
    return {k: [t] for k, t in newest.items() if t.status.state in FAILED_STATES}


def _converged_replicated(
    spec: types_pb2.ServiceSpec, tasks: list[types_pb2.Task], job: bool
) -> tuple[bool, list[SlotProgress]]:
    replicas = max(0, replicas_of(spec))
    goal = TaskState.COMPLETE if job else TaskState.RUNNING
    by_slot: dict[object, list[types_pb2.Task]] = {}
    for t in tasks:
        if (job and t.status.state == TaskState.COMPLETE) or t.desired_state == TaskState.RUNNING:
            by_slot.setdefault(t.slot, []).append(t)
    if len(by_slot) < replicas:
        failed = _failed_groups([t for t in tasks if t.slot not in by_slot], lambda t: t.slot)
        for slot in sorted(failed)[: replicas - len(by_slot)]:  # type: ignore[type-var]  # the keys are slots (ints); the dict is keyed by object
            by_slot[slot] = failed[slot]
    lines = []
    slots = sorted(by_slot)[:replicas]  # type: ignore[type-var]  # the keys are slots (ints); the dict is keyed by object
    for i in range(replicas):
        group = by_slot[slots[i]] if i < len(slots) else []
        if job:
            complete = [t for t in group if t.status.state == TaskState.COMPLETE]
            group = complete or group
        lines.append(_line(f"{i + 1}/{replicas}", _pick(group), goal))
    done = sum(s.done for s in lines) >= replicas
    if not job:  # a scale-down has finished: nothing runs above the last slot (slots are dense)
        done = done and not any(t.status.state == TaskState.RUNNING and t.slot > replicas for t in tasks)
    return done, lines


def _converged_global(
    tasks: list[types_pb2.Task], desired: int | None, job: bool
) -> tuple[bool, list[SlotProgress]]:
    goal = TaskState.COMPLETE if job else TaskState.RUNNING
    by_node: dict[str, list[types_pb2.Task]] = {}
    for t in tasks:
        if t.node_id and (t.desired_state == TaskState.RUNNING or (job and t.status.state == TaskState.COMPLETE)):
            by_node.setdefault(t.node_id, []).append(t)
    lines = [_line(ids.short(node), _pick(by_node[node]), goal) for node in sorted(by_node)]
    done = all(s.done for s in lines) and len(lines) >= (desired or 0)
    if not job:
        # a task still running on a node it is leaving (drain, constraint change) is not converged; one
        # its node's replacement took over from (a rolling update) is not followed, as in replicated mode
        done = done and not any(
            t.status.state == TaskState.RUNNING and t.desired_state != TaskState.RUNNING and t.node_id not in by_node
            for t in tasks
        )
    # nodes waiting out a restart delay are shown, but do not decide convergence (the node may be gone)
    failed = _failed_groups([t for t in tasks if t.node_id and t.node_id not in by_node], lambda t: t.node_id)
    if failed and not done:
        lines += [_line(ids.short(str(n)), g[0], goal) for n, g in failed.items()]
        lines.sort(key=lambda s: s.label)
    return done, lines


def render(spec: types_pb2.ServiceSpec, lines: list[SlotProgress], desired: int | None = None) -> list[str]:
    """The display's text lines (without the final "verify:" line)."""
    ndone = sum(s.done for s in lines)
    job = spec.mode in (ServiceSpec.REPLICATED_JOB, ServiceSpec.GLOBAL_JOB)
    total = len(lines)
    if spec.mode == ServiceSpec.GLOBAL or spec.mode == ServiceSpec.GLOBAL_JOB:
        total = max(total, desired or 0)
    head = f"job progress: {ndone} out of {total} complete" if job else f"overall progress: {ndone} out of {total} tasks"
    if len(lines) > MAX_PROGRESS_BARS:
        return [head]
    return [head] + [s.render() for s in lines]


def _poll(stub: object, service_id: str) -> tuple[types_pb2.Service, list[types_pb2.Task], int | None]:
    service = stub.GetService(control_pb2.GetServiceRequest(service_id=service_id)).service  # type: ignore[attr-defined]  # stub is the ControlStub (the parameter is typed object)
    desired = None
    if service.spec.mode in (ServiceSpec.GLOBAL, ServiceSpec.GLOBAL_JOB):
        listed = stub.ListServices(control_pb2.ListServicesRequest(names=[service.spec.name]))  # type: ignore[attr-defined]  # stub is the ControlStub (the parameter is typed object)
        if service.id in listed.summaries:
            desired = listed.summaries[service.id].desired
    tasks = stub.ListTasks(control_pb2.ListTasksRequest(service_ids=[service.id])).tasks  # type: ignore[attr-defined]  # stub is the ControlStub (the parameter is typed object)
    return service, list(tasks), desired


def _timeout_from_env() -> float | None:
    raw = os.environ.get("SHOAL_CONVERGE_TIMEOUT", "").strip()
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def _live() -> Any:
    """A rich display redrawn in place (terminals only)."""
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    live = Live(Text(""), console=Console(highlight=False), auto_refresh=False, transient=False)
    live.start()
    return live


def _show(live: Any, text: list[str]) -> None:
    from rich.text import Text

    live.update(Text("\n".join(text)), refresh=True)


@dataclass(frozen=True)
class Verdict:
    """What the update state says about a wait: finished, failed (the error to exit with), or a note to show."""

    done: bool = False
    error: str = ""
    note: str = ""


VERIFYING = "verify: Waiting for the monitoring period to verify that tasks are stable..."
FAILURE_SEEN = "verify: Detected task failure"


def verdict(
    status: types_pb2.UpdateStatus, converged: bool, waiting_for_rollback: bool, verifying: bool = False, followed: bool = False
) -> Verdict:
    """docker's reading of ``UpdateStatus`` while it waits (its ``ServiceProgress``), as a pure function.
    ``verifying``: the update had converged and was waiting out its monitoring period; ``followed``: this
    wait saw the update in progress, so its completion ends the wait even with tasks failing (failure
    action continue), as docker's does."""
    US = types_pb2.UpdateStatus
    msg = status.message
    if status.state == US.PAUSED:
        return Verdict(error=f"service update paused: {msg}")
    if status.state == US.ROLLBACK_PAUSED:
        return Verdict(error=f"service rollback paused: {msg}")
    if status.state == US.ROLLBACK_STARTED:
        return Verdict(note=f"rollback: {msg}" if msg else "")
    if status.state == US.ROLLBACK_COMPLETED:
        if not waiting_for_rollback:
            return Verdict(error=f"service rolled back: {msg}")
        return Verdict(done=converged)
    if status.state == US.UPDATING:
        return Verdict(note=VERIFYING if converged else FAILURE_SEEN if verifying else "")
    return Verdict(done=converged or (followed and status.state == US.COMPLETED))


def _step(stub: Any, service_id: str, name: str) -> tuple[str, bool, list[str], types_pb2.UpdateStatus]:
    """One poll: the service's name, whether it converged, the lines to show and the update state."""
    try:
        service, tasks, desired = _poll(stub, service_id)
    except grpc.RpcError as err:
        if client.is_not_found(err):
            raise click.ClickException(f"service {name} was removed while waiting for it to converge") from None
        raise
    done, lines = converged(service, tasks, desired)
    text = render(service.spec, lines, desired)
    if service.update_status.state in rollout.ROLLBACK_STATES and text and text[0].startswith("overall progress: "):
        text[0] = text[0].replace("overall progress: ", "overall progress: rolling back update: ", 1)
    return service.spec.name or service_id, done, text, service.update_status


def _until_state_changes(stub: Any, service_id: str, state: int, sleep: Callable[[float], None]) -> None:
    """Sleep one poll interval, asking for the service alone (not its tasks) every ``STATE_POLL``, and return
    as soon as its update state is no longer ``state``: an update whose tasks all converged ends when its
    monitoring period does, and the wait then ends with it rather than up to a whole poll later."""
    for _ in range(round(POLL_INTERVAL / STATE_POLL)):
        sleep(STATE_POLL)
        try:
            now = stub.GetService(control_pb2.GetServiceRequest(service_id=service_id)).service.update_status.state
        except grpc.RpcError:
            return  # the next whole poll says what went wrong
        if now != state:
            return


def _pause(stub: Any, service_id: str, v: Verdict, state: int, sleep: Callable[[float], None]) -> None:
    """Between two polls: one interval, or less when an update that converged waits out its monitoring period."""
    if v.note == VERIFYING:
        _until_state_changes(stub, service_id, state, sleep)
    else:
        sleep(POLL_INTERVAL)


def _plain(text: list[str], printed: dict[str, str]) -> None:
    """Without a terminal: print each line that changed since it was last printed (docker's plain output)."""
    for line in text:
        key = line.split(":", 1)[0]
        if printed.get(key) != line:
            click.echo(line)
            printed[key] = line


def _noted(notes: list[str], note: str) -> list[str]:
    """The notes shown with ``note`` added: it takes the place of the one of its kind (``verify:``, ``rollback:``)."""
    if not note or note in notes:
        return notes
    kind = note.split(":", 1)[0]
    return [n for n in notes if n.split(":", 1)[0] != kind] + [note]


def wait(
    service_id: str,
    quiet: bool = False,
    timeout: float | None = None,
    sleep: Callable[[float], None] | None = None,
) -> None:
    """Poll until ``service_id`` converges (a rolling update, a rollback: until it completed), showing
    docker's progress display unless ``quiet``: redrawn on a terminal, changed lines otherwise.

    A paused update or rollback, or an update that rolled back, ends the wait with docker's error.
    No timeout by default (as docker); ``SHOAL_CONVERGE_TIMEOUT`` (seconds) or ``timeout`` sets one.
    Ctrl-C stops waiting, not the operation.
    """
    stub = client.stub()
    sleep = sleep or time.sleep
    timeout = _timeout_from_env() if timeout is None else timeout
    deadline = None if timeout is None else time.monotonic() + timeout
    tty = not quiet and sys.stdout.isatty()
    live = None
    shown: list[str] = []
    printed: dict[str, str] = {}
    notes: list[str] = []
    name = service_id
    rollback: bool | None = None
    seen: set[int] = set()  # the update states this wait saw
    try:
        live = _live() if tty else None
        while True:
            name, done, text, status = _step(stub, service_id, name)
            seen.add(status.state)
            if rollback is None:
                rollback = status.state in rollout.ROLLBACK_STATES  # `svc rollback`, or a rollback already under way or done
            v = verdict(status, done, rollback, VERIFYING in notes, types_pb2.UpdateStatus.UPDATING in seen)
            notes = _noted(notes, v.note)
            text = [n for n in notes if n.startswith("rollback:")] + text + [n for n in notes if n.startswith("verify:")]
            if live is not None and text != shown:
                _show(live, text)
                shown = text
            elif live is None and not quiet:
                _plain(text, printed)
            if v.error:
                raise click.ClickException(v.error)
            if v.done:
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise click.ClickException(f"service {name} did not converge within {timeout:g}s; see `shoal service ps {name}`")
            _pause(stub, service_id, v, status.state, sleep)
    except KeyboardInterrupt:
        if live is not None:
            live.stop()
            live = None
        if not quiet:
            click.echo("Operation continuing in background.")
            click.echo(f"Use `shoal service ps {name}` to check progress.")
        return
    finally:
        if live is not None:
            live.stop()
    if not quiet and done:  # an update that completed with tasks failing (continue) ends without it, as docker's
        click.echo("verify: Service converged")
