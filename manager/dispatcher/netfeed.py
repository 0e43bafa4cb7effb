"""The dispatcher's networking inputs, read from the cache: the network maps and the address gate.

``NetFeed`` builds the shared ``ClusterNet`` (every session cuts its node's map from it) again only after
a change that concerns some node's map, says which nodes' maps a cache change concerns (``netaudience``:
the dispatcher wakes only their sessions), and holds a task back from its node until the allocator recorded its addresses:
an agent never sees a task it cannot wire (a node the allocator has not given a subnet yet gets its
tasks once it has one). Only a cluster where no allocator ever ran (no node records at all: unit
tests of other parts) sends tasks without addresses.
"""

from __future__ import annotations

from google.protobuf.message import Message

from shoal.manager.cache import ClusterCache
from shoal.manager.dispatcher.netaudience import Audience, Everyone, Nodes, union
from shoal.manager.dispatcher.netmap import ClusterNet, in_map
from shoal.proto import types_pb2 as pb
from shoal.taskstate import TERMINAL


class NetFeed:
    def __init__(self, cache: ClusterCache) -> None:
        self.cache = cache
        self._built: ClusterNet | None = None
        self.audience = Audience(cache)

    def cluster_net(self) -> ClusterNet:
        """The shared networking state, as of the last change that concerned a node's map.

        Built again only after such a change (``concerned`` said so), not at every new cache revision: while
        10,000 tasks of a service on no network report their states, each revision woke a session that
        rebuilt the whole state (every task's addresses) for a map that could not have changed."""
        if self._built is None:
            self._built = self._build()
        return self._built

    def _build(self) -> ClusterNet:
        c = self.cache
        objs = c.objects
        serving = []
        for tid, v in objs["addresses"].items():
            task = c.get("task", tid)
            if task is None:
                continue
            status = c.status(task)
            if in_map(task, status) and v.obj.node_id == task.node_id:
                serving.append((task, status, v.obj))
        return ClusterNet.build(
            {k: v.obj for k, v in objs["network"].items()},
            {k: v.obj for k, v in objs["nodenet"].items()},
            c.services().values(),
            {k: v.obj for k, v in objs["endpoint"].items()},
            serving,
        )

    def concerned(self, kind: str, obj_id: str, obj: Message | None) -> Nodes:
        """The nodes whose map a change may alter (``EVERYONE``, or a set of node ids); see ``netaudience``."""
        who = self.audience.of_change(kind, obj_id, obj)
        if isinstance(who, Everyone) or who:
            self._built = None  # some node's map may change: build again when a session asks
        if kind == "addresses":  # the gate that lets a task go to its node (``ready``): wake that node
            task = self.cache.get("task", obj_id)
            if task is not None and task.node_id:
                who = union(who, frozenset({task.node_id}))
        return who

    def ready(self, task: pb.Task) -> bool:
        """Whether ``task`` may be sent to its node: its addresses are recorded (or none are kept for the node)."""
        if self.cache.get("nodenet", task.node_id) is None:
            return not self.cache.objects["nodenet"]  # no allocator has run: nothing to wait for
        rec = self.cache.get("addresses", task.id)
        if rec is not None and rec.node_id == task.node_id:
            return True
        return self.cache.status(task).state >= TERMINAL

    def fill(self, task: pb.Task) -> None:
        """Copy the recorded addresses into the task sent to the agent (in place)."""
        rec = self.cache.get("addresses", task.id)
        if rec is not None:
            del task.networks[:]
            task.networks.extend(rec.networks)
            task.bridge_address = rec.bridge_address
