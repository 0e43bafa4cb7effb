"""The network map a node is sent: what it contains for each node, and the increments between two maps."""

from __future__ import annotations

from shoal.manager.dispatcher.assignments import AssignmentSet
from shoal.manager.dispatcher.netmap import ClusterNet, MapSet, in_map, serves
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb

P = pb.PortConfig


def nodenet(underlay: str, *nets: str) -> pb.NodeNetworkInfo:
    info = pb.NodeNetworkInfo(subnet="10.210.9.0/24", gateway="10.210.9.1/24", underlay=underlay)
    for i, n in enumerate(nets):
        info.overlays.add(network_id=n, network=n, address=f"10.{i}.0.9/24")
    return info


def build(running=("t1", "t2")) -> ClusterNet:
    networks = {
        n: pb.Network(
            id=n,
            spec=pb.NetworkSpec(name=n, ingress=n == "ingress"),
            vxlan_id=4096 + i,
            subnet=f"10.{i}.0.0/24",
        )
        for i, n in enumerate(["ingress", "web", "back"])
    }
    nodenets = {
        "a": nodenet("192.168.0.1", "ingress", "web"),
        "b": nodenet("192.168.0.2", "ingress", "web"),
        "c": nodenet("192.168.0.3", "ingress", "back"),
    }
    app = pb.Service(
        id="s-app", spec=pb.ServiceSpec(name="app", networks=[pb.NetworkAttachmentConfig(target="web")])
    )
    db = pb.Service(
        id="s-db",
        spec=pb.ServiceSpec(
            name="db", endpoint_mode=pb.DNSRR, networks=[pb.NetworkAttachmentConfig(target="back")]
        ),
    )
    pub = pb.Service(
        id="s-pub", spec=pb.ServiceSpec(name="pub", ports=[P(target_port=80, published_port=8080)])
    )
    endpoints = {
        "s-app": pb.ServiceEndpoint(
            service_id="s-app",
            endpoint=pb.Endpoint(
                virtual_ips=[pb.VirtualIP(network_id="web", network="web", addr="10.1.0.200/24")]
            ),
        )
    }
    serving = []
    for tid, node in (("t1", "a"), ("t2", "b")):
        if tid in running:
            t = pb.Task(id=tid, service_id="s-app", node_id=node, slot=int(tid[1]), desired_state=pb.RUNNING)
            addrs = pb.TaskAddresses(
                task_id=tid,
                node_id=node,
                bridge_address=f"10.210.9.{tid[1]}/24",
                networks=[
                    pb.NetworkAttachment(network_id="web", network="web", address=f"10.1.0.{tid[1]}/24")
                ],
            )
            serving.append((t, pb.TaskStatus(state=pb.RUNNING, health=pb.HEALTH_HEALTHY), addrs))
    return ClusterNet.build(networks, nodenets, [app, db, pub], endpoints, serving)


def test_a_node_gets_its_networks_with_the_other_nodes_on_them_as_peers():
    m = build().node_map("a")
    assert m.full and m.node.underlay == "192.168.0.1"
    nets = {n.name: n for n in m.networks}
    assert set(nets) == {"ingress", "web"}
    assert list(nets["ingress"].peers) == ["192.168.0.2", "192.168.0.3"] and nets["ingress"].ingress
    assert list(nets["web"].peers) == ["192.168.0.2"]
    assert nets["web"].node_address == "10.1.0.9/24" and nets["web"].vxlan_id == 4097


def test_a_node_gets_the_services_on_its_networks_and_every_published_one_only():
    assert [s.name for s in build().node_map("a").services] == ["app", "pub"]
    assert [s.name for s in build().node_map("c").services] == ["db", "pub"]


def test_tasks_carry_addresses_and_health_and_the_bridge_address_only_on_their_own_node():
    app = next(s for s in build().node_map("a").services if s.name == "app")
    assert [v.addr for v in app.virtual_ips] == ["10.1.0.200/24"]
    tasks = {t.id: t for t in app.tasks}
    assert tasks["t1"].bridge_address == "10.210.9.1/24" and tasks["t2"].bridge_address == ""
    assert tasks["t2"].addresses[0].address == "10.1.0.2/24" and tasks["t2"].health == pb.HEALTH_HEALTHY


def test_increments_carry_only_what_changed_and_nothing_when_nothing_did():
    sent = MapSet()
    assert sent.diff(build().node_map("a"), True).full
    assert sent.diff(build().node_map("a"), False) is None
    inc = sent.diff(build(running=("t1",)).node_map("a"), False)
    assert not inc.full and not inc.HasField("node") and list(inc.networks) == []
    assert [s.name for s in inc.services] == ["app"] and [t.id for t in inc.services[0].tasks] == ["t1"]


def test_a_service_that_goes_away_is_listed_as_removed():
    sent = MapSet()
    sent.diff(build().node_map("a"), True)
    cn = build()
    del cn.services["s-pub"]
    cn.published.clear()
    inc = sent.diff(cn.node_map("a"), False)
    assert list(inc.removed_services) == ["s-pub"] and list(inc.services) == []


def test_only_running_tasks_meant_to_run_serve():
    assert serves(pb.Task(desired_state=pb.RUNNING), pb.TaskStatus(state=pb.RUNNING))
    assert not serves(
        pb.Task(desired_state=pb.SHUTDOWN), pb.TaskStatus(state=pb.RUNNING)
    )  # being stopped: drains
    assert not serves(pb.Task(desired_state=pb.RUNNING), pb.TaskStatus(state=pb.STARTING))


def test_a_started_task_is_in_the_map_serving_nothing_until_it_runs():
    """Regression (tests/e2e/test_stack_lab.py: a web task's health check 'wget http://db/' failed with 'bad
    address' until it was healthy, so it never was): a STARTING task is in the map, with HEALTH_STARTING, so
    its node knows its addresses and answers its DNS queries; it serves nothing until RUNNING."""
    meant = pb.Task(desired_state=pb.RUNNING)
    assert in_map(meant, pb.TaskStatus(state=pb.STARTING)) and in_map(meant, pb.TaskStatus(state=pb.RUNNING))
    assert not in_map(meant, pb.TaskStatus(state=pb.PREPARING)) and not in_map(meant, pb.TaskStatus(state=pb.FAILED))
    assert not in_map(pb.Task(desired_state=pb.SHUTDOWN), pb.TaskStatus(state=pb.STARTING))
    net = pb.Network(id="web", spec=pb.NetworkSpec(name="web"), vxlan_id=4097, subnet="10.1.0.0/24")
    app = pb.Service(id="s-app", spec=pb.ServiceSpec(name="app", networks=[pb.NetworkAttachmentConfig(target="web")]))
    tasks = []
    for tid, status in (("t1", pb.TaskStatus(state=pb.STARTING)), ("t2", pb.TaskStatus(state=pb.STARTING, health=pb.HEALTH_STARTING)),
                        ("t3", pb.TaskStatus(state=pb.RUNNING, health=pb.HEALTH_HEALTHY)), ("t4", pb.TaskStatus(state=pb.RUNNING))):
        addrs = pb.TaskAddresses(task_id=tid, node_id="a", networks=[pb.NetworkAttachment(network_id="web", network="web", address=f"10.1.0.{tid[1]}/24")])
        tasks.append((pb.Task(id=tid, service_id="s-app", node_id="a", desired_state=pb.RUNNING), status, addrs))
    cn = ClusterNet.build({"web": net}, {"a": nodenet("192.168.0.1", "web")}, [app], {}, tasks)
    sent = {t.id: t.health for t in cn.node_map("a").services[0].tasks}
    assert sent == {"t1": pb.HEALTH_STARTING, "t2": pb.HEALTH_STARTING, "t3": pb.HEALTH_HEALTHY, "t4": pb.HEALTH_NONE}


def test_a_task_is_held_back_until_ready_then_sent_with_its_addresses():
    t = pb.Task(id="t1", node_id="a", desired_state=pb.RUNNING)
    ready = {"t1": False}
    sent = AssignmentSet()

    def fill(out: pb.Task) -> None:
        out.bridge_address = "10.210.9.2/24"

    msg = sent.diff([t], lambda _t: pb.ASSIGNED, lambda _tid: 5, True, ready=lambda x: ready[x.id], fill=fill)
    assert list(msg.updated) == []
    ready["t1"] = True
    msg = sent.diff(
        [t], lambda _t: pb.ASSIGNED, lambda _tid: 5, False, ready=lambda x: ready[x.id], fill=fill
    )
    assert [u.bridge_address for u in msg.updated] == ["10.210.9.2/24"]
    ready["t1"] = False  # once sent, a task is never withdrawn for want of addresses
    assert (
        sent.diff([t], lambda _t: pb.ASSIGNED, lambda _tid: 5, False, ready=lambda x: ready[x.id], fill=fill)
        is None
    )


def test_the_map_message_rides_the_session_message():
    m = dpb.SessionMessage(network_map=dpb.NetworkMap(full=True))
    assert m.HasField("network_map") and not m.HasField("assignments")


def test_the_address_gate_waits_for_a_nodes_subnet_once_the_allocator_runs():
    from shoal.manager.cache import ClusterCache
    from shoal.manager.dispatcher.netfeed import NetFeed
    from shoal.manager.store.kinds import Versioned
    from shoal.manager.store.memory import MemoryStore

    cache = ClusterCache(MemoryStore())
    feed = NetFeed(cache)
    t = pb.Task(id="t1", node_id="a", desired_state=pb.RUNNING)
    assert feed.ready(t)  # no allocator ever ran: nothing to wait for
    cache.objects["nodenet"]["b"] = Versioned(nodenet("192.168.0.2"), 1)
    assert not feed.ready(t)  # node a has no subnet yet
    cache.objects["nodenet"]["a"] = Versioned(nodenet("192.168.0.1"), 2)
    assert not feed.ready(t)  # the task has no addresses yet
    cache.objects["addresses"]["t1"] = Versioned(pb.TaskAddresses(task_id="t1", node_id="a", bridge_address="10.210.9.2/24"), 3)
    assert feed.ready(t)
    out = pb.Task()
    out.CopyFrom(t)
    feed.fill(out)
    assert out.bridge_address == "10.210.9.2/24"
