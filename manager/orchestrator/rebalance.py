"""Opt-in rebalancing (``--rebalance``): move tasks of a replicated service onto emptier nodes.

Swarm never moves a running task when a node joins or comes back (moby#24103), so a cluster that
lost a node stays lopsided. A service with ``spec.rebalance`` set is evened out here instead, a few
tasks at a time: a move shuts the task down on the most loaded node and creates a replacement in the
same slot, which the scheduler then places on the emptiest node (it spreads by fewest tasks of the
service). At most the update parallelism (``update_config.parallelism``; 0 means all) of moves are in
flight; a move is in flight until its replacement runs.

The decision is pure and emulates the scheduler's choice (recently failed nodes last, then fewest
tasks of the service, then fewest in total, then node id) so that a move is only made when the
replacement will really land on a node with at least two tasks fewer; that rules out churn, e.g.
towards a node that has no room for one more task. Services with placement preferences are not
rebalanced: the scheduler spreads them over label values first, which an even per-node count
would fight.
"""

from __future__ import annotations

from dataclasses import dataclass

from shoal.manager.orchestrator.types import Actions, new_task
from shoal.proto import types_pb2 as pb
from shoal.views import TaskView


@dataclass(frozen=True)
class NodeLoad:
    """An eligible node (ready, active, constraints met) as the scheduler would see it."""

    room: int  # how many more tasks of this service fit there (reservations, ports, per-node limit)
    total: int = 0  # live tasks of every service there
    failed: bool = False  # this service failed there recently: the scheduler tries it last


def enabled(service: pb.Service | None) -> bool:
    return (
        service is not None
        and service.spec.rebalance
        and service.spec.mode == pb.ServiceSpec.REPLICATED
        and not any(p.spread for p in service.spec.placement.preferences)
    )


def _live(t: TaskView) -> bool:
    return t.task.desired_state == pb.RUNNING and not t.terminal


def moves(service: pb.Service, tasks: list[TaskView], nodes: dict[str, NodeLoad]) -> list[TaskView]:
    """The tasks to move now (each one shut down and replaced in its slot); empty when even or busy.

    ``nodes`` are the nodes eligible for the service; tasks on other nodes (paused, not matching the
    constraints) stay where they are and do not count towards the spread.
    """
    if not enabled(service):
        return []
    live = [t for t in tasks if _live(t)]
    in_flight = sum(1 for t in live if t.state < pb.RUNNING)
    parallelism = service.spec.update_config.parallelism or len(live)
    budget = parallelism - in_flight
    if budget <= 0:
        return []
    count = dict.fromkeys(nodes, 0)
    total = {nid: n.total for nid, n in nodes.items()}
    room = {nid: n.room for nid, n in nodes.items()}
    movable: dict[str, list[TaskView]] = {nid: [] for nid in nodes}
    for t in live:
        nid = t.task.node_id
        if nid in count:
            count[nid] += 1
            if t.state == pb.RUNNING:
                movable[nid].append(t)
    for ts in movable.values():
        ts.sort(key=lambda t: (t.task.slot, t.created))  # the highest slot moves first, as in scale-down
    chosen: list[TaskView] = []
    while len(chosen) < budget:
        sources = [nid for nid in nodes if movable[nid]]
        if not sources:
            break
        src = max(sources, key=lambda nid: (count[nid], total[nid], nid))  # the most loaded node
        count[src] -= 1
        total[src] -= 1
        room[src] += 1
        targets = [nid for nid in nodes if room[nid] > 0]
        dst = min(targets, key=lambda nid: (nodes[nid].failed, count[nid], total[nid], nid))  # the scheduler's pick
        if dst == src or count[src] + 1 - count[dst] < 2:
            break  # even (max - min <= 1), or the replacement would not land anywhere emptier
        count[dst] += 1
        total[dst] += 1
        room[dst] -= 1
        chosen.append(movable[src].pop())
    return chosen


def add_moves(service: pb.Service, moved: list[TaskView], acts: Actions, now_ns: int) -> None:
    """Shut each moved task down and create its replacement (PENDING, for the scheduler) in its slot."""
    for t in moved:
        acts.set_desired[t.id] = pb.SHUTDOWN
        acts.create.append(new_task(service, t.task.slot, now_ns))
