"""What a restarted agent does with the containers its previous run left (pure).

The runtime keeps containers running across an agent kill -9. On the first full assignment set
after a start, the agent re-attaches a controller to every assigned task whose container is still
there (its observed state is what the cluster last heard, so a RUNNING task stays RUNNING), marks a
task failed whose container vanished meanwhile (the host rebooted, someone deleted it), and deletes
containers whose tasks are no longer assigned (replaced while the agent was away).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal.proto import types_pb2 as pb
from shoal.taskstate import TERMINAL


@dataclass
class Adoption:
    adopt: dict[str, int] = field(default_factory=dict)  # task id -> observed state to resume from
    lost: list[str] = field(default_factory=list)  # tasks whose container is gone
    remove: list[str] = field(default_factory=list)  # containers no task claims


def plan(assigned: dict[str, int], leftovers: set[str]) -> Adoption:
    """``assigned``: task id -> the cluster's view of its state; ``leftovers``: existing containers."""
    out = Adoption()
    for tid, state in assigned.items():
        if tid in leftovers and state < TERMINAL:
            # the container exists, so a prepare ran: resume from PREPARING at least (the cluster may not
            # have heard of it before the agent went down; preparing again would fail on the existing one)
            # a task with a health check is reported STARTING from its start until its first healthy
            # probe: its container runs, so it resumes as running (its checks start over)
            out.adopt[tid] = pb.RUNNING if state == pb.STARTING else max(state, pb.PREPARING)
        elif tid in leftovers and state >= TERMINAL:
            out.remove.append(tid)  # done, but the manager still lists it: the controller cleans up
        elif tid not in leftovers and pb.PREPARING <= state < TERMINAL:
            out.lost.append(tid)
    out.remove.extend(sorted(leftovers - set(assigned)))
    return out
