"""Task states, their order, and the effective-status rule: the vocabulary every side shares.

A task's observed state only moves forward through ``pb.TaskState`` (NEW < PENDING < ... < RUNNING <
COMPLETE < SHUTDOWN < FAILED < REJECTED ...), so "later" is numeric order and every state from
``TERMINAL`` on means the task no longer runs. Two parties write a task's status: the manager in the
task itself (PENDING, ASSIGNED, a SHUTDOWN before it reached a node) and the agent in its reports. The
effective status is the agent's report once it has reached at least the manager's state, else the
manager's: the one rule the orchestrators, the scheduler, the dispatcher and the control API read.
"""

from __future__ import annotations

from shoal.proto import types_pb2 as pb

TERMINAL: int = pb.COMPLETE
"""This state and every later one means the task no longer runs."""

ORDER: tuple[int, ...] = tuple(sorted(pb.TaskState.values()))
"""Every task state, earliest first."""

FAILED_STATES: frozenset[int] = frozenset({pb.FAILED, pb.REJECTED})
"""The states of a task that ended in an error (its ``err`` says why)."""


def is_terminal(state: int) -> bool:
    """Whether a task in ``state`` no longer runs (COMPLETE, SHUTDOWN, FAILED, REJECTED, ...)."""
    return state >= TERMINAL


def effective_status(task: pb.Task, report: pb.TaskStatus | None) -> pb.TaskStatus:
    """The status that counts for ``task``: the agent's ``report`` once it is at least as far, else the task's own."""
    if report is not None and report.state >= task.status.state:
        return report
    return task.status

