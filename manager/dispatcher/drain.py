"""A task that served through the routing mesh is stopped only once no node sends it new connections.

When the manager asks a serving task to stop (a rolling update replaced it, the service shrank or was
removed, its node drains), the task leaves every node's network map at once, and each node's agent
loads an nftables mesh without it. Stopping the container before some node has loaded that mesh sends
that node's next client to a container that is going away: a refused connection. A fixed wait on the
task's node (the agent's drain, ``worker.taskstate.DRAIN_S``) is no guarantee: a busy node loads later.

So the dispatcher orders it: every map it sends carries the store revision it was cut at
(``NetworkMap.revision``), each agent tells which revision its loaded mesh follows
(``SessionRequest.mesh_revision``), and a stop (the task's desired state leaving RUNNING, at the task's
revision) goes to the task's node only once every node that balances the task's service has a mesh
current at that revision or later (``behind``). A node's mesh is current at the revision of the last
map it loaded, and at any later one at which the map it would be sent is still that one (``MeshState``). The agent's own
drain still follows, for the connections already made.

Limits, each a fallback to the timed drain alone: a node that never reported a mesh (an agent without
networking, or of an older version) is not waited for; nobody waits longer than ``DRAIN_WAIT_S`` after
the stop was asked (a node whose nftables refuses the mesh must not keep old tasks running forever);
and only the nodes holding their session with this dispatcher are known here (with several managers,
the others' nodes are not waited for). Pure: plain data in, a decision out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shoal.proto import types_pb2 as pb

DRAIN_WAIT_S = 5.0
"""The longest a stop waits for the nodes' meshes (after it was asked: the task's ``meta.updated_at_ns``)."""


@dataclass
class MeshState:
    """What one session's node has loaded: the maps sent to it and what it acknowledged."""

    sent: int = 0  # the revision of the last map sent
    acked: int = -1  # the newest map revision whose mesh the node loaded (-1: it never said: not waited for)
    synced: int = 0  # the node's mesh is current at this store revision

    def map_sent(self, revision: int) -> None:
        self.sent = revision

    def unchanged(self, revision: int) -> bool:
        """The node's map at ``revision`` is the one last sent: its mesh is current then, if it loaded
        that map. True when ``synced`` moved forward."""
        if self.acked >= self.sent and revision > self.synced:
            self.synced = revision
            return True
        return False

    def ack(self, revision: int) -> bool:
        """The node loaded the mesh of the map cut at ``revision`` (so its mesh is current at that revision,
        even if newer maps are on their way: while a rolling update runs, some always are); True when news."""
        if revision <= self.acked:
            return False
        self.acked = revision
        self.synced = max(self.synced, revision)
        return True


def in_mesh(task: pb.Task, state: int) -> bool:
    """Whether some node may balance connections to ``task``: it runs and its service publishes a port or
    is on a network (a VIP). A task that never reached RUNNING never served (STARTING is out of the mesh)."""
    return state == pb.RUNNING and bool(task.spec.ports or task.spec.networks)


def behind(
    task: pb.Task, state: int, task_rev: int, now_ns: int, nodes: Mapping[str, MeshState]
) -> list[str]:
    """The nodes (of ``nodes``: those that balance the task's service) whose mesh may still send ``task``
    connections, so its stop waits; empty: it may go. ``task_rev``: the task's revision (its stop)."""
    if task.desired_state == pb.RUNNING or not in_mesh(task, state):
        return []
    if now_ns >= task.meta.updated_at_ns + int(DRAIN_WAIT_S * 1e9):
        return []
    return sorted(n for n, m in nodes.items() if m.acked >= 0 and m.synced < task_rev)


def released(task_rev: int, nodes: Iterable[MeshState]) -> bool:
    """Whether a stop at ``task_rev`` may go as far as ``nodes`` (those balancing the task) are concerned."""
    return all(m.acked < 0 or m.synced >= task_rev for m in nodes)


def wait_until_ns(task: pb.Task) -> int:
    """When a stop held back for the nodes' meshes goes anyway."""
    return task.meta.updated_at_ns + int(DRAIN_WAIT_S * 1e9)
