"""The per-node plan: which frontends a node balances over which addresses, and who sees which service in DNS."""

from __future__ import annotations

import dns.asyncquery
import dns.message
import dns.rcode

from shoal.worker.network.dns import DnsResponder, Records
from shoal.worker.network.nft import ANY, HOST, Endpoint, Frontend, Mesh, build
from shoal.worker.network.plan import INGRESS, NODE, Directory, Port, ServiceNet, TaskNet, mesh_for

WEB = ServiceNet("web", ("front",), {"front": "10.1.0.200", INGRESS: "10.255.0.200"}, (Port(80, 8080),))
API = ServiceNet("api", ("back",), {"back": "10.2.0.200"}, (Port(9000),))
T1 = TaskNet("web", "n1", {NODE: "10.210.1.2", "front": "10.1.0.2", INGRESS: "10.255.0.2"})
T2 = TaskNet("web", "n2", {NODE: "10.210.2.2", "front": "10.1.0.3", INGRESS: "10.255.0.3"})
A1 = TaskNet("api", "n2", {NODE: "10.210.2.3", "back": "10.2.0.2"})
SUBNETS = ("10.210.1.0/24", "10.1.0.0/24", "10.255.0.0/24")


def by_key(mesh: Mesh) -> dict[tuple, Frontend]:
    return {(f.service, f.vip, f.port, f.protocol): f for f in mesh.frontends}


def test_a_vip_balances_over_the_tasks_addresses_on_its_network_on_every_port():
    fes = by_key(mesh_for("n1", [WEB], [T1, T2], SUBNETS))
    front = fes[("web", "10.1.0.200", 0, ANY)]
    assert front.endpoints == (Endpoint("10.1.0.2", 0, True), Endpoint("10.1.0.3", 0, False))
    ingress = fes[("web", "10.255.0.200", 0, ANY)]
    assert {e.ip for e in ingress.endpoints} == {"10.255.0.2", "10.255.0.3"}
    assert not any(f.vip and f.protocol != ANY for f in fes.values()), "one frontend per VIP, not one per port"


def test_a_service_without_ports_is_reachable_through_its_vip():
    quiet = ServiceNet("quiet", ("front",), {"front": "10.1.0.210"})
    rs = build(mesh_for("n1", [quiet], [TaskNet("quiet", "n2", {"front": "10.1.0.11"})], SUBNETS))
    assert list(rs.maps["vips-any"]) == ["10.1.0.210"] and rs.maps["vips"] == {} and rs.maps["published"] == {}


def test_a_published_port_reaches_local_tasks_on_the_node_bridge_and_others_over_ingress():
    fes = by_key(mesh_for("n1", [WEB], [T1, T2], SUBNETS))
    pub = fes[("web", None, 8080, "tcp")]
    assert pub.endpoints == (Endpoint("10.210.1.2", 80, True), Endpoint("10.255.0.3", 80, False))
    assert pub.mode == "ingress"


def test_a_node_without_tasks_still_publishes_and_balances():
    mesh = mesh_for("n3", [WEB], [T1, T2], ())
    pub = by_key(mesh)[("web", None, 8080, "tcp")]
    assert all(not e.local for e in pub.endpoints) and len(pub.endpoints) == 2


def test_host_mode_publishes_only_this_nodes_tasks():
    svc = ServiceNet("web", ("front",), {}, (Port(80, 8080, mode=HOST),))
    assert by_key(mesh_for("n1", [svc], [T1, T2], ()))[("web", None, 8080, "tcp")].endpoints == \
        (Endpoint("10.210.1.2", 80, True),)
    rs = build(mesh_for("n3", [svc], [T1, T2], ()))
    assert rs.maps["published"] == {} and rs.maps["published-empty"] == {}  # nothing bound on n3


def test_tasks_that_do_not_serve_get_no_traffic():
    sick = TaskNet(T2.service, T2.node, T2.addresses, serving=False)
    fes = by_key(mesh_for("n1", [WEB], [T1, sick], SUBNETS))
    assert fes[("web", "10.1.0.200", 0, ANY)].endpoints == (Endpoint("10.1.0.2", 0, True),)
    none = by_key(mesh_for("n1", [WEB], [TaskNet("web", "n1", T1.addresses, serving=False)], SUBNETS))
    assert none[("web", None, 8080, "tcp")].endpoints == ()  # refused at once by the mesh


def test_dnsrr_services_have_no_vip_frontends():
    rr = ServiceNet("rr", ("front",), {}, (Port(80),), dnsrr=True)
    assert mesh_for("n1", [rr], [TaskNet("rr", "n1", {"front": "10.1.0.9"})], ()).frontends == ()


def test_udp_ports_and_the_plan_are_loadable():
    svc = ServiceNet("dns", ("front",), {"front": "10.1.0.201"}, (Port(53, 53, protocol="udp"),))
    mesh = mesh_for("n1", [WEB, API, svc], [T1, T2, A1, TaskNet("dns", "n1", {NODE: "10.210.1.5", "front": "10.1.0.5"})],
                    SUBNETS)
    rs = build(mesh)
    assert "10.1.0.201" in rs.maps["vips-any"] and "udp . 53" in rs.maps["published"]
    assert mesh.local_subnets == tuple(sorted(SUBNETS))


def test_dns_answers_only_services_on_a_shared_network():
    d = Directory([WEB, API], [T1, T2, A1])
    assert d("10.1.0.2", "web") == Records(vips=("10.1.0.200",), tasks=("10.1.0.2", "10.1.0.3"))
    assert d("10.210.1.2", "web") == d("10.1.0.2", "web")  # any of the asker's addresses identifies it
    assert d("10.1.0.2", "api") is None  # web's tasks are not on "back"
    assert d("10.2.0.2", "api") == Records(vips=("10.2.0.200",), tasks=("10.2.0.2",))
    assert d("192.0.2.1", "web") is None  # not a task: the name is forwarded like any other
    assert d("10.1.0.2", "nosuch") is None


def test_the_ingress_network_is_not_a_shared_network_for_dns():
    only_ingress = TaskNet("x", "n1", {NODE: "10.210.1.9", INGRESS: "10.255.0.9"})
    assert Directory([WEB], [T1, only_ingress])("10.255.0.9", "web") is None


def test_dns_leaves_out_tasks_that_do_not_serve_and_keeps_dnsrr():
    rr = ServiceNet("rr", ("front",), {}, (Port(80),), dnsrr=True)
    tasks = [TaskNet("rr", "n1", {"front": "10.1.0.7"}), TaskNet("rr", "n2", {"front": "10.1.0.8"}, serving=False)]
    d = Directory([WEB, rr], [T1, *tasks])
    assert d("10.1.0.2", "rr") == Records(vips=(), tasks=("10.1.0.7",), dnsrr=True)


def test_service_names_are_matched_case_insensitively():
    d = Directory([ServiceNet("Web", ("front",), {"front": "10.1.0.200"})], [TaskNet("Web", "n1", {"front": "10.1.0.2"})])
    assert d("10.1.0.2", "web") == Records(vips=("10.1.0.200",), tasks=("10.1.0.2",))


def test_an_alias_answers_only_on_its_network_with_that_networks_records():
    svc = ServiceNet("db", ("back", "front"), {"back": "10.2.0.201", "front": "10.1.0.201"},
                     aliases={"back": ("store", "Primary")})
    tasks = [TaskNet("db", "n1", {"back": "10.2.0.5", "front": "10.1.0.5"}), A1, T1]
    d = Directory([svc, API, WEB], tasks)
    assert d("10.2.0.2", "store") == Records(vips=("10.2.0.201",), tasks=("10.2.0.5",))  # api is on back
    assert d("10.2.0.2", "primary") == d("10.2.0.2", "store")  # matched case-insensitively
    assert d("10.1.0.2", "store") is None  # web is on front only: the alias is not its to see
    assert d("10.1.0.2", "db") == Records(vips=("10.1.0.201",), tasks=("10.1.0.5",))  # the name still answers


def test_a_service_name_wins_over_another_services_alias():
    other = ServiceNet("cache", ("front",), {"front": "10.1.0.220"}, aliases={"front": ("web",)})
    d = Directory([WEB, other], [T1, T2])
    assert d("10.1.0.2", "web").vips == ("10.1.0.200",)


def test_the_map_carries_aliases_by_network_name():
    from shoal.proto import dispatcher_pb2 as dpb
    from shoal.proto import types_pb2 as pb
    from shoal.worker.netmap import NetMap

    m = NetMap()
    msg = dpb.NetworkMap(full=True, networks=[dpb.MapNetwork(id="n-back", name="back", node_address="10.2.0.3/24")])
    msg.services.add(id="s1", name="db", networks=[pb.NetworkAttachmentConfig(target="n-back", aliases=["store"])])
    m.apply(msg)
    (svc,) = m.service_nets()
    assert svc.aliases == {"back": ("store",)} and svc.networks == ("back",)


async def test_the_directory_drives_the_dns_responder():
    asker = TaskNet("web", "n1", {NODE: "127.0.0.1", "front": "10.1.0.2"})
    server = DnsResponder(Directory([WEB], [asker, T2]), host="127.0.0.1", port=0, timeout=0.5)
    port = await server.start()
    try:
        async def ask(name: str, source: str = "127.0.0.1") -> dns.message.Message:
            return await dns.asyncquery.udp(dns.message.make_query(name, "A"), "127.0.0.1", timeout=3, port=port,
                                            source=source)

        assert [r.address for rr in (await ask("web")).answer for r in rr] == ["10.1.0.200"]
        assert sorted(r.address for rr in (await ask("tasks.web")).answer for r in rr) == ["10.1.0.2", "10.1.0.3"]
        assert (await ask("web", source="127.0.0.2")).rcode() == dns.rcode.SERVFAIL  # not a task: forwarded
    finally:
        await server.close()
