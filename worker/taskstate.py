"""The agent's task state machine as pure functions: what to do next, and which status follows.

A task the agent holds moves forward only: ASSIGNED, ACCEPTED, PREPARING, STARTING, RUNNING, then one
terminal state (COMPLETE, SHUTDOWN, FAILED, REJECTED); the states and their order are ``shoal.taskstate``. ``next_step`` names the next step from what the
manager wants (desired state) and what the agent has reached (observed state). A step may announce
the state it enters (``begin``: PREPARING, STARTING), then makes at most one executor call, and
``decide`` turns that call's outcome into the next status: the state, the message ``svc ps`` shows,
the error text and exit code. This is swarmkit's ``exec.Do`` split into a pure half (here) and the
I/O half (``controller.py``), so every lifecycle rule is a unit test on plain data.

A status whose state is behind the observed one is a bug, never a transition: ``forward`` refuses it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from shoal.proto import types_pb2 as pb
from shoal.taskstate import TERMINAL
from shoal.worker.executor import Exit


class Step(enum.Enum):
    ACCEPT = "accept"  # ASSIGNED -> ACCEPTED
    PREPARE = "prepare"  # ACCEPTED -> PREPARING -> (container created)
    START = "start"  # PREPARING -> STARTING -> RUNNING
    WAIT = "wait"  # RUNNING until it exits -> COMPLETE / FAILED
    SHUTDOWN = "shutdown"  # stop whatever runs -> SHUTDOWN
    DONE = "done"  # terminal: nothing left to do


@dataclass(frozen=True)
class Status:
    """A task status the agent reports (the proto ``TaskStatus`` without timestamps and health)."""

    state: int
    message: str
    err: str = ""
    exit_code: int = 0
    pid: int = 0


# ---- outcomes of a step's executor call ----------------------------------------------------------


@dataclass(frozen=True)
class Done:
    """The call succeeded (``pid``: what start returned)."""

    pid: int = 0


@dataclass(frozen=True)
class Failed:
    """The call raised an executor error; ``error`` is shown in ``svc ps``."""

    error: str


class Waited(enum.Enum):
    """How a wait ended when the container did not exit."""

    UNHEALTHY = "unhealthy"  # its health checks failed while it should run: the agent stops it
    INTERRUPTED = "interrupted"  # the manager changed the desired state: take the next step


Outcome = Done | Failed | Exit | Waited
"""``Exit`` (from the executor): the container exited, with its code and whether the OOM killer did it."""


class BackwardsTransition(AssertionError):
    """A task's observed state would move back: a bug in the agent, never a legal transition."""


def next_step(desired: int, observed: int) -> Step:
    """The next step for a task the agent holds."""
    if observed >= TERMINAL:
        return Step.DONE
    if desired >= pb.SHUTDOWN:
        return Step.SHUTDOWN
    if observed < pb.ACCEPTED:
        return Step.ACCEPT
    if observed < pb.PREPARING:
        return Step.PREPARE
    if observed < pb.RUNNING:
        return Step.START
    return Step.WAIT


_BEGIN = {
    Step.PREPARE: Status(pb.PREPARING, "preparing"),
    Step.START: Status(pb.STARTING, "starting"),
}


def begin(step: Step) -> Status | None:
    """The status reported as a step begins, before its executor call (None: nothing to report)."""
    return _BEGIN.get(step)


def decide(step: Step, desired: int, outcome: Outcome) -> Status | None:
    """The status a step's outcome leads to; None: the task stays where it is.

    ``desired`` is the desired state once the call returned (the manager may have changed it meanwhile).
    """
    if isinstance(outcome, Failed):
        # a task that could not be prepared never ran on this node: the node rejects it
        return Status(pb.REJECTED if step is Step.PREPARE else pb.FAILED, "failed", err=outcome.error)
    if step is Step.ACCEPT:
        return Status(pb.ACCEPTED, "accepted")
    if step is Step.PREPARE:
        return None  # prepared: the task stays PREPARING until START moves it on
    if step is Step.START:
        return Status(pb.RUNNING, "started", pid=outcome.pid if isinstance(outcome, Done) else 0)
    if step is Step.SHUTDOWN:
        return Status(pb.SHUTDOWN, "shutdown")
    if step is Step.WAIT:
        return _after_wait(desired, outcome)
    return None


def _after_wait(desired: int, outcome: Outcome) -> Status | None:
    if isinstance(outcome, Exit):
        if desired >= pb.SHUTDOWN:  # it exited because the manager asked it to stop
            return Status(pb.SHUTDOWN, "shutdown", exit_code=outcome.exit_code)
        state, err = exit_status(outcome.exit_code, outcome.oom_killed)
        return Status(state, "finished" if state == pb.COMPLETE else "failed", err=err, exit_code=outcome.exit_code)
    if outcome is Waited.UNHEALTHY and desired == pb.RUNNING:
        return Status(pb.FAILED, "failed", err="task: unhealthy container")
    return None  # interrupted (or unhealthy while stopping anyway): the next step decides


def wait_outcome(exited: Exit | None, health: int, desired: int) -> Exit | Waited:
    """How a wait ended: the exit if the container exited, else whether it is unhealthy or interrupted.

    An exit wins over a health verdict; an unhealthy container only fails the task while it should run.
    """
    if exited is not None:
        return exited
    if health == pb.HEALTH_UNHEALTHY and desired == pb.RUNNING:
        return Waited.UNHEALTHY
    return Waited.INTERRUPTED


def exit_status(exit_code: int, oom_killed: bool) -> tuple[int, str]:
    """The terminal state and error text for a container that exited, worded as docker's."""
    if oom_killed:
        return pb.FAILED, f"task: non-zero exit ({exit_code}): OOM killed"
    if exit_code == 0:
        return pb.COMPLETE, ""
    return pb.FAILED, f"task: non-zero exit ({exit_code})"


def health_status(health: int, output: str) -> Status:
    """A RUNNING task's status after its health changed: unhealthy shows the last probe's output."""
    return Status(pb.RUNNING, "started", err=f"health check: {output}" if health == pb.HEALTH_UNHEALTHY and output else "")


DRAIN_S = 1.0
"""How long a task that serves through the routing mesh keeps running after the manager asked it to
stop, before its container gets the stop signal: the manager takes it out of every node's network map
at once, and each node's rules drop it in a few milliseconds, so no new connection reaches a container
that is going away (a rolling update then fails no request). Swarm stops at once and loses some."""


def drain_s(task: pb.Task, observed: int) -> float:
    """The wait before stopping ``task``: DRAIN_S while it runs with networks or published ports, else 0."""
    if observed != pb.RUNNING:
        return 0.0
    return DRAIN_S if task.networks or task.spec.ports or task.spec.networks else 0.0


def shown_state(observed: int, health_checked: bool, healthy_once: bool) -> int:
    """The state reported for a task: SwarmKit's rule keeps a task with a health check STARTING from
    the moment its container started until its first healthy probe, so nothing counts it (or sends it
    traffic) as running before it can serve."""
    if observed == pb.RUNNING and health_checked and not healthy_once:
        return pb.STARTING
    return observed


def lost(observed: int, why: str) -> Status | None:
    """A task whose container vanished (found on an agent restart) failed, unless it had already ended."""
    return Status(pb.FAILED, "failed", err=why) if observed < TERMINAL else None


def removal_grace(observed: int, has_container: bool, grace_s: float) -> float | None:
    """How long to let a task's container stop when the task leaves the node; None: nothing to clean up.

    A container that already ended is removed at once; one still running gets its stop grace period.
    """
    if not has_container and observed < pb.PREPARING:
        return None
    return 0.0 if observed >= TERMINAL else grace_s


def forward(observed: int, new: int) -> int:
    """The new observed state; raises ``BackwardsTransition`` if it would move back."""
    if new < observed:
        raise BackwardsTransition(f"task state moving backwards: {pb.TaskState.Name(observed)} -> {pb.TaskState.Name(new)}")
    return new
