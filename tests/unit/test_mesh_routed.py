"""The routing mesh between nodes on one link goes by plain routes, not VXLAN (worker/network/routes.py).

What each layer must carry for it: the manager sends every node's task subnet and underlay on ingress,
and the bridge address of the tasks of publishing services to every node; the worker turns them into
the routes its ``NodeSpec`` asks for; ``mesh_for`` DNATs to a remote task's bridge address only when its
node's subnet is routed here; and the nft table keeps those subnets out of reach of local tasks except
through the mesh.
"""

from __future__ import annotations

import ipaddress
import re

from shoal.lab import lifecycle, state
from shoal.manager.dispatcher.netmap import ClusterNet
from shoal.node.daemon import _network
from shoal.node.options import NodeOptions
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.worker.netmap import NetMap
from shoal.worker.network.nft import Endpoint, Frontend, Mesh, build, render
from shoal.worker.network.nfttable import delta
from shoal.worker.network.plan import INGRESS, NODE, Port, ServiceNet, TaskNet, mesh_for

LOCAL = ("10.210.1.0/24", "10.255.0.0/24")
REMOTE = "10.210.2.0/24"


def cluster() -> ClusterNet:
    networks = {n: pb.Network(id=n, spec=pb.NetworkSpec(name=n, ingress=n == "ingress"), vxlan_id=4096 + i,
                              subnet=f"10.{i}.0.0/24") for i, n in enumerate(["ingress", "back"])}
    nodenets = {}
    for i, node in enumerate("ab", start=1):
        info = pb.NodeNetworkInfo(subnet=f"10.210.{i}.0/24", gateway=f"10.210.{i}.1/24", underlay=f"192.168.0.{i}")
        info.overlays.add(network_id="ingress", network="ingress", address=f"10.0.0.{i}/24")
        info.overlays.add(network_id="back", network="back", address=f"10.1.0.{i}/24")
        nodenets[node] = info
    pub = pb.Service(id="s-pub", spec=pb.ServiceSpec(name="pub", ports=[pb.PortConfig(target_port=80, published_port=8080)]))
    db = pb.Service(id="s-db", spec=pb.ServiceSpec(name="db", networks=[pb.NetworkAttachmentConfig(target="back")]))
    serving = []
    for tid, sid in (("t1", "s-pub"), ("t2", "s-db")):
        task = pb.Task(id=tid, service_id=sid, node_id="b", desired_state=pb.RUNNING)
        addrs = pb.TaskAddresses(task_id=tid, node_id="b", bridge_address=f"10.210.2.{tid[1]}/24")
        serving.append((task, pb.TaskStatus(state=pb.RUNNING), addrs))
    return ClusterNet.build(networks, nodenets, [pub, db], {}, serving)


def test_ingress_lists_every_nodes_subnet_and_underlay_and_other_networks_do_not():
    nets = {n.name: n for n in cluster().node_map("a").networks}
    assert [(p.subnet, p.underlay) for p in nets["ingress"].peer_subnets] == [
        ("10.210.1.0/24", "192.168.0.1"), ("10.210.2.0/24", "192.168.0.2")]
    assert list(nets["back"].peer_subnets) == []


def test_other_nodes_get_the_bridge_address_of_a_publishing_services_tasks_only():
    tasks = {t.id: t.bridge_address for s in cluster().node_map("a").services for t in s.tasks}
    assert tasks == {"t1": "10.210.2.1/24", "t2": ""}


def test_the_worker_asks_for_routes_to_the_other_nodes_subnets_not_its_own():
    m = NetMap()
    ingress = dpb.MapNetwork(id="ingress", name="ingress", vxlan_id=4096, subnet="10.0.0.0/24",
                             node_address="10.0.0.1/24", ingress=True)
    for subnet, underlay in (("10.210.1.0/24", "192.168.0.1"), (REMOTE, "192.168.0.2"), ("10.210.3.0/24", "192.168.0.3")):
        ingress.peer_subnets.add(subnet=subnet, underlay=underlay)
    node = pb.NodeNetworkInfo(subnet="10.210.1.0/24", gateway="10.210.1.1/24", underlay="192.168.0.1")
    m.apply(dpb.NetworkMap(full=True, node=node, networks=[ingress]))
    spec = m.node_spec()
    assert spec is not None and spec.peer_subnets == ((REMOTE, "192.168.0.2"), ("10.210.3.0/24", "192.168.0.3"))


def published(tasks: list[TaskNet], routed: tuple[str, ...] = (), mode: str = "ingress") -> tuple[Endpoint, ...]:
    svc = ServiceNet("web", (INGRESS,), ports=(Port(80, 8080, mode=mode),))
    (fe,) = mesh_for("a", [svc], tasks, LOCAL, routed=routed).frontends
    return fe.endpoints


def test_a_task_on_a_routed_node_is_reached_at_its_bridge_address_else_over_the_ingress():
    remote = TaskNet("web", "b", {NODE: "10.210.2.7", INGRESS: "10.255.0.7"})
    behind_a_router = TaskNet("web", "c", {NODE: "10.210.3.7", INGRESS: "10.255.0.8"})
    assert published([remote, behind_a_router], routed=(REMOTE,)) == (
        Endpoint("10.210.2.7", 80, False), Endpoint("10.255.0.8", 80, False))
    assert published([remote]) == (Endpoint("10.255.0.7", 80, False),), "no route: VXLAN as before"
    without_bridge = TaskNet("web", "b", {INGRESS: "10.255.0.7"})
    assert published([without_bridge], routed=(REMOTE,)) == (Endpoint("10.255.0.7", 80, False),)
    assert published([remote], routed=(REMOTE,), mode="host") == (), "host mode: this node's tasks only"


def test_the_mesh_carries_the_routed_subnets():
    mesh = mesh_for("a", [], [], LOCAL, routed=(REMOTE, REMOTE))
    assert mesh.routed_subnets == (REMOTE,)


def elements(text: str, name: str) -> list[str]:
    block = text.split(f"set {name} {{", 1)[1].split("\n\t}", 1)[0]
    found = re.search(r"elements = \{ (.*) \}", block)
    return found.group(1).split(", ") if found else []


def test_local_tasks_and_a_routed_subnets_tasks_meet_only_through_the_mesh():
    fe = Frontend("web", 8080, (Endpoint("10.210.2.7", 80),))
    text = render(Mesh((fe,), LOCAL, routed_subnets=(REMOTE,)))
    pairs = elements(text, "cross-networks")
    for local in LOCAL:
        assert f"{local} . {REMOTE}" in pairs and f"{REMOTE} . {local}" in pairs
    assert "10.210.1.0/24 . 10.255.0.0/24" in pairs, "the local networks' own pairs stay"
    assert len(pairs) == 6
    assert "ip saddr . ip daddr @cross-networks jump task-forward" in text


def test_a_change_of_routed_subnets_alone_rewrites_the_cross_network_pairs():
    old, new = build(Mesh((), LOCAL)), build(Mesh((), LOCAL, routed_subnets=(REMOTE,)))
    lines = (delta(old, new) or "").splitlines()
    assert "flush set ip shoal cross-networks" in lines
    assert any(line.startswith("add element ip shoal cross-networks") and f"10.210.1.0/24 . {REMOTE}" in line
               for line in lines)
    assert delta(new, new) == ""


def test_lab_nodes_route_directly_on_the_switch_the_lab_built(tmp_path):
    lab = state.plan("t", 1, 1, ipaddress.ip_network("172.30.9.0/24"), tmp_path, False)
    assert "--direct-routing" in lifecycle.manager_argv(lab, lab.managers[0], first=True)
    assert "--direct-routing" in lifecycle.worker_argv(lab, lab.workers[0])


def test_direct_routing_is_off_unless_asked_and_reaches_the_agents_plumbing(tmp_path):
    assert not NodeOptions(data_dir=tmp_path).direct_routing
    assert _network(NodeOptions(data_dir=tmp_path), tmp_path).plumbing.direct_routing is False
    assert _network(NodeOptions(data_dir=tmp_path, direct_routing=True), tmp_path).plumbing.direct_routing is True
