"""Which sessions a networking change wakes: every node whose map changes, and no node on other networks."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.manager.cache import ClusterCache
from shoal.manager.dispatcher.netaudience import EVERYONE, Everyone
from shoal.manager.dispatcher.netfeed import NetFeed
from shoal.manager.store.kinds import Versioned
from shoal.manager.store.memory import MemoryStore
from shoal.proto import types_pb2 as pb

NODES = ("a", "b", "c", "d")
NETS = ("ingress", "front", "back")
SERVICES = ("s1", "s2", "s3")
TASKS = ("t1", "t2", "t3", "t4")


class World:
    """A cache holding networking records, changed one record at a time as the store's watch would."""

    def __init__(self) -> None:
        self.cache = ClusterCache(MemoryStore())
        self.feed = NetFeed(self.cache)
        for i, n in enumerate(NETS):
            self.put("network", n, pb.Network(id=n, spec=pb.NetworkSpec(name=n, ingress=n == "ingress"),
                                              vxlan_id=4096 + i, subnet=f"10.{i}.0.0/24"))

    def put(self, kind: str, obj_id: str, obj) -> object:
        self.cache.revision += 1
        if obj is None:
            self.cache.objects[kind].pop(obj_id, None)
        else:
            self.cache.objects[kind][obj_id] = Versioned(obj, self.cache.revision)
        return self.feed.concerned(kind, obj_id, obj)

    def maps(self, cached: bool = False) -> dict[str, bytes]:
        """Every node's map from the cache as it is now (``cached``: from the feed's kept state)."""
        cn = self.feed.cluster_net() if cached else self.feed._build()
        return {n: cn.node_map(n).SerializeToString(deterministic=True) for n in NODES}


def nodenet(node: str, nets, underlay: str = "") -> pb.NodeNetworkInfo:
    info = pb.NodeNetworkInfo(subnet="10.210.9.0/24", gateway="10.210.9.1/24",
                              underlay=underlay or f"192.168.0.{NODES.index(node) + 1}")
    for i, n in enumerate(sorted(nets)):
        info.overlays.add(network_id=n, network=n, address=f"10.{NETS.index(n)}.0.{i + 9}/24")
    return info


def service(sid: str, nets, published: bool) -> pb.Service:
    spec = pb.ServiceSpec(name=sid, networks=[pb.NetworkAttachmentConfig(target=n) for n in sorted(nets)])
    if published:
        spec.ports.add(target_port=80, published_port=8000 + int(sid[1]))
    return pb.Service(id=sid, spec=spec)


def endpoint(sid: str, nets) -> pb.ServiceEndpoint:
    return pb.ServiceEndpoint(service_id=sid, endpoint=pb.Endpoint(virtual_ips=[
        pb.VirtualIP(network_id=n, network=n, addr=f"10.{NETS.index(n)}.0.200/24") for n in sorted(nets)]))


def task(tid: str, sid: str, node: str, running: bool) -> pb.Task:
    return pb.Task(id=tid, service_id=sid, node_id=node, desired_state=pb.RUNNING if running else pb.SHUTDOWN)


def addresses(tid: str, node: str, nets) -> pb.TaskAddresses:
    return pb.TaskAddresses(task_id=tid, node_id=node, bridge_address=f"10.210.9.{TASKS.index(tid) + 2}/24",
                            networks=[pb.NetworkAttachment(network_id=n, network=n,
                                                           address=f"10.{NETS.index(n)}.0.{TASKS.index(tid) + 20}/24")
                                      for n in sorted(nets)])


nets_st = st.frozensets(st.sampled_from(NETS))
change_st = st.one_of(
    st.tuples(st.just("nodenet"), st.sampled_from(NODES), st.one_of(st.none(), st.builds(
        nodenet, st.sampled_from(NODES), nets_st, st.sampled_from(["", "192.168.1.9"])))),
    st.tuples(st.just("service"), st.sampled_from(SERVICES), st.one_of(st.none(), st.builds(
        service, st.sampled_from(SERVICES), st.frozensets(st.sampled_from(NETS[1:])), st.booleans()))),
    st.tuples(st.just("endpoint"), st.sampled_from(SERVICES), st.one_of(st.none(), st.builds(
        endpoint, st.sampled_from(SERVICES), st.frozensets(st.sampled_from(NETS[1:]))))),
    st.tuples(st.just("task"), st.sampled_from(TASKS), st.one_of(st.none(), st.builds(
        task, st.sampled_from(TASKS), st.sampled_from(SERVICES), st.sampled_from(NODES), st.booleans()))),
    st.tuples(st.just("status"), st.sampled_from(TASKS), st.one_of(st.none(), st.builds(
        pb.TaskStatus, state=st.sampled_from([pb.RUNNING, pb.COMPLETE]),
        health=st.sampled_from([pb.HEALTH_NONE, pb.HEALTH_HEALTHY, pb.HEALTH_UNHEALTHY])))),
    st.tuples(st.just("addresses"), st.sampled_from(TASKS), st.one_of(st.none(), st.builds(
        addresses, st.sampled_from(TASKS), st.sampled_from(NODES), nets_st))),
)


def fix_ids(kind: str, obj_id: str, obj):
    """Make the generated record's own id match the key it is stored under."""
    if obj is None:
        return obj
    if kind == "service":
        obj.id = obj_id
    elif kind == "endpoint":
        obj.service_id = obj_id
    elif kind in ("task", "addresses"):
        setattr(obj, "id" if kind == "task" else "task_id", obj_id)
    return obj


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(change_st, min_size=1, max_size=25))
def test_every_node_whose_map_changes_is_woken(changes):
    w = World()
    for kind, obj_id, obj in changes:
        before = w.maps()
        woken = w.put(kind, obj_id, fix_ids(kind, obj_id, obj))
        after = w.maps()
        changed = {n for n in NODES if before[n] != after[n]}
        if not isinstance(woken, Everyone):
            assert changed <= woken, (kind, obj_id, changed, woken)


def test_a_node_readdressed_wakes_every_node_on_ingress():
    """Ingress's map lists every node's task subnet and underlay (direct routing): another node's new
    underlay changes the map of a node on ingress that shares no other network with it."""
    w = World()
    w.put("nodenet", "a", nodenet("a", {"ingress"}))
    before = w.maps()["a"]
    woken = w.put("nodenet", "b", nodenet("b", set(), "192.168.1.9"))
    assert w.maps()["a"] != before
    assert "a" in woken
    assert w.put("nodenet", "b", nodenet("b", set(), "192.168.1.9")) == frozenset({"b"})  # nothing moved


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(change_st, min_size=1, max_size=25))
def test_the_kept_state_gives_every_node_the_map_of_a_fresh_build(changes):
    """The feed builds again only after a change that concerns someone: its maps never fall behind."""
    w = World()
    w.maps(cached=True)
    for kind, obj_id, obj in changes:
        w.put(kind, obj_id, fix_ids(kind, obj_id, obj))
        assert w.maps(cached=True) == w.maps(), (kind, obj_id)


def test_a_change_no_map_shows_does_not_rebuild_the_state():
    w = World()
    w.put("nodenet", "a", nodenet("a", {"ingress"}))
    w.put("service", "s3", service("s3", set(), published=False))  # on no network, publishing nothing
    kept = w.feed.cluster_net()
    assert w.put("task", "t1", task("t1", "s3", "a", True)) == frozenset()
    gate = pb.TaskAddresses(task_id="t1", node_id="a", bridge_address="10.210.9.2/24")
    assert w.put("addresses", "t1", gate) == {"a"}, "the task's node is woken: its task may go to it now"
    assert w.put("status", "t1", pb.TaskStatus(state=pb.RUNNING)) == frozenset()
    assert w.put("task", "t1", task("t1", "s3", "a", False)) == frozenset()
    assert w.feed.cluster_net() is kept, "no map changed: the state is not built again"
    w.put("service", "s3", service("s3", set(), published=True))
    assert w.feed.cluster_net() is not kept


def test_a_change_on_one_network_wakes_only_the_nodes_on_it():
    w = World()
    w.put("nodenet", "a", nodenet("a", {"ingress", "front"}))
    w.put("nodenet", "b", nodenet("b", {"ingress", "front"}))
    w.put("nodenet", "c", nodenet("c", {"ingress", "back"}))
    assert w.put("service", "s1", service("s1", {"front"}, published=False)) == {"a", "b"}
    w.put("task", "t1", task("t1", "s1", "a", True))
    w.put("addresses", "t1", addresses("t1", "a", {"front"}))
    assert w.put("status", "t1", pb.TaskStatus(state=pb.RUNNING)) == {"a", "b"}, "c is not on front"
    assert w.put("network", "back", pb.Network(id="back", spec=pb.NetworkSpec(name="back"))) == {"c"}
    assert w.put("service", "s2", service("s2", set(), published=True)) is EVERYONE, "a published port is everyone's"
    assert w.put("service", "s1", service("s1", {"back"}, published=False)) == {"a", "b", "c"}, "before and after"
    assert w.put("service", "s3", service("s3", set(), published=False)) == frozenset()


class FakeSession:
    def __init__(self) -> None:
        self.wake = asyncio.Event()


def test_the_dispatcher_wakes_only_the_sessions_of_concerned_nodes():
    from shoal.manager.dispatcher.service import Dispatcher

    cache = ClusterCache(MemoryStore())
    d = Dispatcher.__new__(Dispatcher)  # only its change listener: no store, no server
    d.cache, d.net, d._task_node = cache, NetFeed(cache), {}
    d.sessions = {n: FakeSession() for n in ("a", "b", "c")}

    def change(kind, obj_id, obj):
        for s in d.sessions.values():
            s.wake.clear()
        cache.revision += 1
        cache.objects[kind][obj_id] = Versioned(obj, cache.revision)
        d._on_change(kind, obj_id, obj)
        return {n for n, s in d.sessions.items() if s.wake.is_set()}

    change("nodenet", "a", nodenet("a", {"front"}))
    change("nodenet", "b", nodenet("b", {"front"}))
    change("nodenet", "c", nodenet("c", {"back"}))
    change("service", "s1", service("s1", {"front"}, published=False))
    assert change("task", "t1", task("t1", "s1", "a", True)) == {"a", "b"}
    assert change("status", "t1", pb.TaskStatus(state=pb.RUNNING)) == {"a", "b"}, "c's session is not woken"
    assert change("service", "s2", service("s2", set(), published=True)) == {"a", "b", "c"}


def test_a_tasks_addresses_wake_its_own_node_even_on_no_network():
    """The dispatcher holds a task back until its addresses are recorded; that record must wake the task's
    node, or a task of a service on no network (bridge address only) stays ASSIGNED for ever."""
    w = World()
    w.put("nodenet", "a", nodenet("a", []))
    w.put("service", "s1", service("s1", [], published=False))
    assert w.put("task", "t1", task("t1", "s1", "a", running=True)) == frozenset()
    assert w.put("addresses", "t1", addresses("t1", "a", [])) == frozenset({"a"})
