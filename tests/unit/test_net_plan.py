"""The per-node plan: which frontends a node balances over which addresses, and who sees which service in DNS."""

from __future__ import annotations

import dns.asyncquery
import dns.message
import dns.rcode

from shoal.worker.network.dns import DnsResponder, Records
from shoal.worker.network.nft import HOST, Endpoint, Frontend, Mesh, build
from shoal.worker.network.plan import INGRESS, NODE, Directory, Port, ServiceNet, TaskNet, mesh_for

WEB = ServiceNet("web", ("front",), {"front": "10.1.0.200", INGRESS: "10.255.0.200"}, (Port(80, 8080),))
API = ServiceNet("api", ("back",), {"back": "10.2.0.200"}, (Port(9000),))
T1 = TaskNet("web", "n1", {NODE: "10.210.1.2", "front": "10.1.0.2", INGRESS: "10.255.0.2"})
T2 = TaskNet("web", "n2", {NODE: "10.210.2.2", "front": "10.1.0.3", INGRESS: "10.255.0.3"})
A1 = TaskNet("api", "n2", {NODE: "10.210.2.3", "back": "10.2.0.2"})
SUBNETS = ("10.210.1.0/24", "10.1.0.0/24", "10.255.0.0/24")


def by_key(mesh: Mesh) -> dict[tuple, Frontend]:
    return {(f.service, f.vip, f.port, f.protocol): f for f in mesh.frontends}


def test_a_vip_balances_over_the_tasks_addresses_on_its_network():
    fes = by_key(mesh_for("n1", [WEB], [T1, T2], SUBNETS))
    front = fes[("web", "10.1.0.200", 80, "tcp")]
    assert front.endpoints == (Endpoint("10.1.0.2", 80, True), Endpoint("10.1.0.3", 80, False))
    ingress = fes[("web", "10.255.0.200", 80, "tcp")]
    assert {e.ip for e in ingress.endpoints} == {"10.255.0.2", "10.255.0.3"}


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
    assert fes[("web", "10.1.0.200", 80, "tcp")].endpoints == (Endpoint("10.1.0.2", 80, True),)
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
    assert "10.1.0.201 . udp . 53" in rs.maps["vips"] and "udp . 53" in rs.maps["published"]
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
