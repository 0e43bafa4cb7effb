"""Which nodes a change in the cache concerns, for their network maps: the dispatcher wakes only those.

A node's map (``ClusterNet.node_map``) holds the networks the node is on (their peers: the other nodes
on them), the services on those networks, and every service that publishes a port. So a change
concerns:

* a node's network record (``nodenet``): that node, and every node on a network it is or was on
  (their peer lists change); when its task subnet or underlay address changed, also every node on
  ingress (ingress's map lists every node's subnet and underlay: ``ClusterNet.peer_subnets``);
* a network: the nodes on it;
* a service or its endpoint record, or a task of it (its definition, status or addresses): the nodes
  that see the service, before and after the change; and a task's addresses record also wakes the
  task's own node, which is held back from it until they are recorded. That is every node when the service publishes a
  port (each node balances it), else the nodes on its networks; a service on no network that
  publishes nothing is in no map, so its tasks wake no one.

``Audience`` keeps what it needs to answer for the state before a change: which networks each node was
on (an index kept as ``nodenet`` records change) and each service's reach when last seen (whether it
published a port, its networks). It reads the
cache after the change, which the cache has already applied when it calls its listeners. A missed wake
would leave a node's map behind, so the rule errs on the side of more nodes; the dispatcher still sends
a woken node nothing when its map did not change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf.message import Message

from shoal.manager.cache import ClusterCache


class Everyone:
    """The audience of a change every node's map may follow (a published port)."""

    def __repr__(self) -> str:
        return "EVERYONE"


EVERYONE = Everyone()
Nodes = frozenset[str] | Everyone
Reach = tuple[bool, frozenset[str]]  # (publishes a port, its network ids)
NOWHERE: Reach = (False, frozenset())
TASK_KINDS = ("task", "status", "addresses")


def union(a: Nodes, b: Nodes) -> Nodes:
    if isinstance(a, Everyone) or isinstance(b, Everyone):
        return EVERYONE
    return a | b


@dataclass
class Audience:
    cache: ClusterCache
    on_net: dict[str, set[str]] = field(default_factory=dict)  # network id -> nodes on it
    nets_of: dict[str, frozenset[str]] = field(default_factory=dict)  # node id -> its networks
    reached: dict[str, Reach] = field(default_factory=dict)  # service id -> its reach when last seen
    service_of: dict[str, str] = field(default_factory=dict)  # task id -> its service (after it is gone)
    routed_by: dict[str, tuple[str, str]] = field(default_factory=dict)  # node id -> (task subnet, underlay)
    _indexed: bool = False

    def _index(self) -> None:
        if not self._indexed:
            self._indexed = True
            for node_id in list(self.cache.objects["nodenet"]):
                self._reindex(node_id)
                self._readdressed(node_id)

    def _reindex(self, node_id: str) -> frozenset[str]:
        """Refresh ``node_id``'s networks from the cache; returns the networks it was on before."""
        info = self.cache.get("nodenet", node_id)
        now = frozenset(o.network_id for o in info.overlays) if info is not None else frozenset()
        before = self.nets_of.pop(node_id, frozenset())
        for net in before - now:
            self.on_net.get(net, set()).discard(node_id)
        for net in now:
            self.on_net.setdefault(net, set()).add(node_id)
        if now:
            self.nets_of[node_id] = now
        return before

    def _readdressed(self, node_id: str) -> bool:
        """Refresh ``node_id``'s task subnet and underlay; whether either changed (or it came or went)."""
        info = self.cache.get("nodenet", node_id)
        now = (info.subnet, info.underlay) if info is not None else ("", "")
        before = self.routed_by.pop(node_id, ("", ""))
        if now != ("", ""):
            self.routed_by[node_id] = now
        return now != before

    def _on_ingress(self) -> frozenset[str]:
        ingress = {nid for nid, v in self.cache.objects["network"].items() if v.obj.spec.ingress}
        return self.nodes_on(ingress)

    def nodes_on(self, networks: set[str] | frozenset[str]) -> frozenset[str]:
        out: set[str] = set()
        for net in networks:
            out |= self.on_net.get(net, set())
        return frozenset(out)

    def reach(self, service_id: str) -> Reach:
        """Whether the service publishes a port, and its networks (nothing once it is gone)."""
        svc = self.cache.get("service", service_id)
        if svc is None:
            return NOWHERE
        rec = self.cache.get("endpoint", service_id)
        nets = {a.target for a in svc.spec.networks}
        if rec is not None:
            nets |= {v.network_id for v in rec.endpoint.virtual_ips}
        return bool(svc.spec.ports or (rec is not None and rec.endpoint.ports)), frozenset(nets)

    def seen_by(self, reach: Reach) -> Nodes:
        published, nets = reach
        return EVERYONE if published else self.nodes_on(nets)

    def _service(self, service_id: str) -> Nodes:
        """Who saw the service before the change (its reach then, over today's network members: a node
        that left a network since was woken by its own change) and who sees it now."""
        now = self.reach(service_id)
        before = self.reached.pop(service_id, NOWHERE)
        if now != NOWHERE:
            self.reached[service_id] = now
        return union(self.seen_by(before), self.seen_by(now))

    def _service_of_task(self, kind: str, task_id: str, obj: Message | None) -> str:
        task = obj if kind == "task" else self.cache.get("task", task_id)
        if task is not None:
            sid: str = task.service_id  # type: ignore[attr-defined]  # a listener gets the kind's message: a Task here
            self.service_of[task_id] = sid
            return sid
        return self.service_of.pop(task_id, "") if kind == "task" else self.service_of.get(task_id, "")

    def of_change(self, kind: str, obj_id: str, obj: Message | None) -> Nodes:
        """The nodes whose map a change of ``kind``/``obj_id`` (now ``obj``, None: deleted) may alter."""
        self._index()
        if kind == "nodenet":
            before = self._reindex(obj_id)
            woken = frozenset({obj_id}) | self.nodes_on(before | self.nets_of.get(obj_id, frozenset()))
            return woken | self._on_ingress() if self._readdressed(obj_id) else woken
        if kind == "network":
            return self.nodes_on({obj_id})
        if kind in ("service", "endpoint"):
            return self._service(obj_id)
        if kind in TASK_KINDS:
            sid = self._service_of_task(kind, obj_id, obj)
            return self._service(sid) if sid else frozenset()
        return frozenset()
