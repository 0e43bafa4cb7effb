"""What a restarted agent does with the containers its previous run left (pure).

The runtime keeps containers running across an agent kill -9. On the first full assignment set
after a start, the agent re-attaches a controller to every assigned task whose container is still
there, marks a task failed whose container vanished meanwhile (the host rebooted, someone deleted it),
and deletes containers whose tasks are no longer assigned (replaced while the agent was away).

The container of a task that ended is kept for its log, as a running agent keeps it: a task still
assigned (the cluster heard it end, but has not asked it to stop yet) is held until it leaves the set,
like any ended task; a task in the task history (``history``: it left the set while the agent was down
or before it could delete the container) has its log kept, then its container is deleted.

Where an adopted task resumes follows what the cluster last heard and what the container did:

- RUNNING: it waits on its container; with a health check it had passed one (``healthy``), so it stays
  RUNNING while its checks run on.
- STARTING with a started container: a task with a health check is STARTING from its start until its
  first healthy probe (SwarmKit's rule). It is not taken for running: it resumes waiting on its
  container, still shown STARTING, and its checks start over; the first healthy one makes it RUNNING.
- STARTING with a container never started (the agent died in the middle of starting it): it is
  started again, from PREPARING.
- before that: from PREPARING at least (the container exists, so a prepare ran; preparing again
  would fail on the existing one).
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, field

from shoal.proto import types_pb2 as pb
from shoal.taskstate import TERMINAL


@dataclass
class Adoption:
    adopt: dict[str, int] = field(default_factory=dict)  # task id -> observed state to resume from
    healthy: set[str] = field(default_factory=set)  # adopted tasks whose health check already passed
    lost: list[str] = field(default_factory=list)  # tasks whose container is gone
    ended: dict[str, int] = field(default_factory=dict)  # assigned tasks that ended: held (container and log) until they leave
    history: list[str] = field(default_factory=list)  # containers of tasks in the history: their logs kept, then deleted
    remove: list[str] = field(default_factory=list)  # containers no task claims


def resume_state(state: int, started: bool) -> int:
    """The observed state an adopted task resumes from (see the module doc)."""
    return pb.RUNNING if state >= pb.STARTING and started else pb.PREPARING


def plan(
    assigned: dict[str, int], leftovers: Set[str], never_started: Set[str] = frozenset(), history: Set[str] = frozenset()
) -> Adoption:
    """``assigned``: task id -> the cluster's view of its state; ``leftovers``: existing containers;
    ``never_started``: those of them that were created but never started; ``history``: the ids of the
    node's tasks in the task history."""
    out = Adoption()
    for tid, state in assigned.items():
        if tid in leftovers and state < TERMINAL:
            out.adopt[tid] = resume_state(state, tid not in never_started)
            if state == pb.RUNNING and tid not in never_started:
                out.healthy.add(tid)
        elif tid in leftovers and state >= TERMINAL:
            out.ended[tid] = state  # done, but the manager still lists it: removed when it leaves the set
        elif tid not in leftovers and pb.PREPARING <= state < TERMINAL:
            out.lost.append(tid)
    for tid in sorted(set(leftovers) - set(assigned)):
        (out.history if tid in history else out.remove).append(tid)
    return out
