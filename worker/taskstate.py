"""The agent's task state machine as one pure step function (the states and their order are ``shoal.taskstate``).

Given what the manager wants (desired state) and what the agent has reached (observed state), name the
next step forward. Observed state never moves back; a step that would move it back is a bug.
"""

from __future__ import annotations

import enum

from shoal.proto import types_pb2 as pb
from shoal.taskstate import TERMINAL


class Step(enum.Enum):
    ACCEPT = "accept"  # ASSIGNED -> ACCEPTED
    PREPARE = "prepare"  # ACCEPTED -> PREPARING -> (container created)
    START = "start"  # PREPARING -> STARTING -> RUNNING
    WAIT = "wait"  # RUNNING until it exits -> COMPLETE / FAILED
    SHUTDOWN = "shutdown"  # stop whatever runs -> SHUTDOWN
    DONE = "done"  # terminal: nothing left to do


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


def exit_status(exit_code: int, oom_killed: bool) -> tuple[int, str]:
    """The terminal state and error text for a container that exited, worded as docker's."""
    if oom_killed:
        return pb.FAILED, f"task: non-zero exit ({exit_code}): OOM killed"
    if exit_code == 0:
        return pb.COMPLETE, ""
    return pb.FAILED, f"task: non-zero exit ({exit_code})"


def advance(observed: int, new: int) -> int:
    """Move forward only: the later of the two states."""
    return max(observed, new)
