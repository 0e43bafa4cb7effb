"""The worker side of the network map: increments merge by id, and the views the mesh and DNS take come out of it."""

from __future__ import annotations

import pytest

from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.worker.netmap import NetMap, ip_of, task_networks
from shoal.worker.network.plan import INGRESS, NODE, Directory, Port, mesh_for
from shoal.worker.network.topology import OverlaySpec

NODE_INFO = pb.NodeNetworkInfo(subnet="10.210.1.0/24", gateway="10.210.1.1/24", underlay="192.168.90.2")
WEB = dpb.MapNetwork(id="n-web", name="web", vxlan_id=4097, subnet="10.210.64.0/24", vip_block="10.210.64.192/26",
                     node_address="10.210.64.2/24", peers=["192.168.90.3", "192.168.90.4"])
INGRESS_NET = dpb.MapNetwork(id="n-ing", name="ingress", vxlan_id=4096, subnet="10.210.128.0/24",
                             vip_block="10.210.128.192/26", node_address="10.210.128.2/24", peers=["192.168.90.3"],
                             ingress=True)


def service(sid: str = "s-app", name: str = "app", tasks: list[dpb.MapTask] | None = None, **kw) -> dpb.MapService:
    s = dpb.MapService(id=sid, name=name, **kw)
    s.networks.add(target="n-web")
    s.virtual_ips.add(network_id="n-web", network="web", addr="10.210.64.200/24")
    s.ports.add(target_port=80, published_port=8080)
    s.tasks.extend(tasks or [])
    return s


def map_task(tid: str, node: str, web: str, bridge: str = "", health: int = pb.HEALTH_NONE) -> dpb.MapTask:
    t = dpb.MapTask(id=tid, node_id=node, bridge_address=bridge, health=health)
    t.addresses.add(network_id="n-web", network="web", address=web)
    return t


def full() -> dpb.NetworkMap:
    tasks = [map_task("t1", "me", "10.210.64.5/24", bridge="10.210.1.5/24"),
             map_task("t2", "other", "10.210.64.6/24")]
    return dpb.NetworkMap(full=True, node=NODE_INFO, networks=[WEB, INGRESS_NET], services=[service(tasks=tasks)])


def test_the_node_spec_has_the_bridge_and_one_overlay_per_network_with_its_own_peers():
    m = NetMap()
    assert m.node_spec() is None, "no node info yet: nothing to wire"
    m.apply(full())
    spec = m.node_spec()
    assert spec is not None
    assert (spec.gateway, spec.underlay) == ("10.210.1.1/24", "192.168.90.2")
    assert spec.overlays == (
        OverlaySpec("ingress", 4096, "10.210.128.0/24", "10.210.128.2/24", "10.210.128.192/26", ("192.168.90.3",)),
        OverlaySpec("web", 4097, "10.210.64.0/24", "10.210.64.2/24", "10.210.64.192/26",
                    ("192.168.90.3", "192.168.90.4")),
    )
    assert spec.local_subnets() == ("10.210.1.0/24", "10.210.128.0/24", "10.210.64.0/24")


def test_increments_replace_and_remove_by_id_and_a_full_map_starts_over():
    m = NetMap()
    m.apply(full())
    m.apply(dpb.NetworkMap(removed_networks=["n-web"], services=[service(tasks=[])]))
    assert m.network_names() == {"ingress"}
    assert m.task_nets() == []
    m.apply(dpb.NetworkMap(removed_services=["s-app"]))
    assert m.service_nets() == []
    m.apply(dpb.NetworkMap(full=True, networks=[WEB]))
    assert m.node is None and m.node_spec() is None and m.network_names() == {"web"}
    assert m.version == 4


def test_services_carry_vips_by_network_name_ports_and_ingress_when_they_publish():
    m = NetMap()
    m.apply(full())
    (svc,) = m.service_nets()
    assert svc.name == "app" and svc.networks == (INGRESS, "web")
    assert svc.vips == {"web": "10.210.64.200"}
    assert svc.ports == (Port(80, 8080, "tcp", "ingress"),)
    assert not svc.dnsrr
    m.apply(dpb.NetworkMap(services=[service(mode=pb.DNSRR)]))
    assert m.service_nets()[0].dnsrr


def test_tasks_serve_unless_unhealthy_or_starting_and_local_ones_have_their_bridge_address():
    m = NetMap()
    tasks = [map_task("t1", "me", "10.210.64.5/24", bridge="10.210.1.5/24"),
             map_task("t2", "other", "10.210.64.6/24", health=pb.HEALTH_HEALTHY),
             map_task("t3", "other", "10.210.64.7/24", health=pb.HEALTH_UNHEALTHY),
             map_task("t4", "other", "10.210.64.8/24", health=pb.HEALTH_STARTING)]
    m.apply(dpb.NetworkMap(full=True, node=NODE_INFO, networks=[WEB], services=[service(tasks=tasks)]))
    nets = {t.addresses["web"]: t for t in m.task_nets()}
    assert nets["10.210.64.5"].addresses == {"web": "10.210.64.5", NODE: "10.210.1.5"}
    assert [a for a, t in sorted(nets.items()) if t.serving] == ["10.210.64.5", "10.210.64.6"]


def test_the_mesh_balances_the_vip_over_serving_tasks_and_dns_answers_only_a_shared_network():
    m = NetMap()
    m.apply(full())
    spec = m.node_spec()
    assert spec is not None
    mesh = mesh_for("me", m.service_nets(), m.task_nets(), spec.local_subnets())
    vip = next(f for f in mesh.frontends if f.vip)
    assert (vip.vip, vip.port, vip.protocol) == ("10.210.64.200", 0, "any")  # every port, as Swarm's VIP
    assert {e.ip for e in vip.endpoints} == {"10.210.64.5", "10.210.64.6"}
    published = next(f for f in mesh.frontends if not f.vip)
    assert published.port == 8080 and {e.ip for e in published.endpoints if e.local} == {"10.210.1.5"}
    directory = Directory(m.service_nets(), m.task_nets())
    records = directory("10.210.1.5", "app")  # t1 asks from its bridge address
    assert records is not None and records.vips == ("10.210.64.200",)
    assert directory("10.210.1.99", "app") is None, "an address of no task on the network learns nothing"


def test_a_starting_task_resolves_the_names_it_may_see_and_is_in_no_answer():
    """A task still STARTING (its health check not passed yet) asks the node's resolver for a service it
    shares a network with: it gets the answer, and is itself in no answer and behind no VIP."""
    m = NetMap()
    tasks = [map_task("t1", "me", "10.210.64.5/24", bridge="10.210.1.5/24", health=pb.HEALTH_STARTING),
             map_task("t2", "other", "10.210.64.6/24", health=pb.HEALTH_HEALTHY)]
    m.apply(dpb.NetworkMap(full=True, node=NODE_INFO, networks=[WEB], services=[service(tasks=tasks)]))
    directory = Directory(m.service_nets(), m.task_nets())
    records = directory("10.210.1.5", "app")
    assert records is not None and records.vips == ("10.210.64.200",) and records.tasks == ("10.210.64.6",)
    spec = m.node_spec()
    assert spec is not None
    vip = next(f for f in mesh_for("me", m.service_nets(), m.task_nets(), spec.local_subnets()).frontends if f.vip)
    assert {e.ip for e in vip.endpoints} == {"10.210.64.6"}


def test_a_tasks_addresses_by_network_name():
    t = pb.Task(id="t1", bridge_address="10.210.1.5/24")
    t.networks.add(network_id="n-web", network="web", address="10.210.64.5/24")
    t.networks.add(network_id="n-ing", network="ingress", address="10.210.128.5/24")
    assert task_networks(t) == {"web": "10.210.64.5/24", "ingress": "10.210.128.5/24"}


def test_an_address_is_read_the_same_with_or_without_its_prefix_and_a_bad_one_always_errs():
    for _ in range(2):  # (ip_of is cached: a second call answers, or errs, as the first)
        assert ip_of("10.210.64.5/24") == ip_of("10.210.64.5") == "10.210.64.5"
        with pytest.raises(ValueError):
            ip_of("10.210.64.300/24")
