"""Published ports and the control API's network checks, on plain protobuf data.

Ingress ports are published on every node, so a protocol/port belongs to one service: a clash is
refused naming the holder, ``published_port = 0`` gets the lowest free port of Swarm's range and keeps
it across passes, whatever order the services come in. A service's network targets are resolved to
ids (by id, name, then unique prefix) and an unknown network or the routing mesh itself is refused.
"""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from shoal.manager.ipam.ports import AUTO_FIRST, AUTO_LAST, assign, clash, describe, holders, ingress_ports
from shoal.manager.netapi import find_network, network_problem
from shoal.proto import types_pb2 as pb

TCP, UDP = pb.PortConfig.TCP, pb.PortConfig.UDP
INGRESS, HOST = pb.PortConfig.INGRESS, pb.PortConfig.HOST


def port(target: int, published: int = 0, protocol: int = TCP, mode: int = INGRESS, name: str = "") -> pb.PortConfig:
    return pb.PortConfig(target_port=target, published_port=published, protocol=protocol, publish_mode=mode, name=name)  # type: ignore[arg-type]


def svc(sid: str, name: str, *ports: pb.PortConfig, networks: tuple[str, ...] = ()) -> pb.Service:
    spec = pb.ServiceSpec(name=name, ports=list(ports))
    for n in networks:
        spec.networks.add(target=n)
    return pb.Service(id=sid, spec=spec)


def endpoint(sid: str, *ports: pb.PortConfig) -> pb.ServiceEndpoint:
    rec = pb.ServiceEndpoint(service_id=sid)
    rec.endpoint.ports.extend(ports)
    return rec


# -- describe / holders / clash --------------------------------------------------------------------------


def test_a_port_reads_as_number_and_protocol():
    assert describe(port(80, 8080)) == "8080/tcp"
    assert describe(port(53, 5353, UDP)) == "5353/udp"


def test_only_ingress_ports_are_the_meshs():
    spec = svc("a", "web", port(80, 8080), port(443, 8443, mode=HOST)).spec
    assert [p.published_port for p in ingress_ports(spec)] == [8080]


def test_holders_counts_explicit_and_picked_ports():
    web = svc("a", "web", port(80, 8080), port(81))
    api = svc("b", "api", port(53, 53, UDP))
    held = holders([web, api], {"a": endpoint("a", port(80, 8080), port(81, 30000))})
    assert held == {(TCP, 8080): "web", (TCP, 30000): "web", (UDP, 53): "api"}


def test_a_port_another_service_holds_is_refused_naming_it():
    web = svc("a", "web", port(80, 8080))
    assert clash(svc("b", "api", port(90, 8080)).spec, [web]) == "port 8080/tcp is already published by service web"


def test_the_same_number_on_another_protocol_is_free():
    web = svc("a", "web", port(80, 8080))
    assert clash(svc("b", "dns", port(53, 8080, UDP)).spec, [web]) is None


def test_a_port_a_service_was_given_automatically_is_held_too():
    web = svc("a", "web", port(80))
    rec = {"a": endpoint("a", port(80, 30000))}
    assert clash(svc("b", "api", port(90, 30000)).spec, [web], rec) == "port 30000/tcp is already published by service web"


def test_publishing_one_port_twice_in_a_spec_is_refused():
    assert clash(svc("b", "api", port(80, 9000), port(81, 9000)).spec, []) == "port 9000/tcp is published twice by service api"


def test_host_mode_ports_never_clash_here():
    web = svc("a", "web", port(80, 8080, mode=HOST))
    assert clash(svc("b", "api", port(80, 8080, mode=HOST)).spec, [web]) is None


# -- assign ------------------------------------------------------------------------------------------------


def test_an_unpublished_ingress_port_gets_the_lowest_free_port_of_the_range():
    out = assign([svc("a", "web", port(80)), svc("b", "api", port(80), port(81))], {})
    assert [p.published_port for p in out["a"]] == [AUTO_FIRST]
    assert [p.published_port for p in out["b"]] == [AUTO_FIRST + 1, AUTO_FIRST + 2]


def test_explicit_and_host_mode_ports_stay_as_asked():
    out = assign([svc("a", "web", port(80, 8080), port(443, 0, mode=HOST))], {})
    assert [(p.published_port, p.publish_mode) for p in out["a"]] == [(8080, INGRESS), (0, HOST)]


def test_an_explicit_port_in_the_range_is_skipped_by_the_picker():
    out = assign([svc("a", "web", port(80, AUTO_FIRST)), svc("b", "api", port(80))], {})
    assert out["b"][0].published_port == AUTO_FIRST + 1


def test_a_service_keeps_the_port_it_was_given():
    recorded = {"b": endpoint("b", port(80, 31000))}
    out = assign([svc("a", "web", port(80)), svc("b", "api", port(80))], recorded)
    assert out["b"][0].published_port == 31000, "kept across passes"
    assert out["a"][0].published_port == AUTO_FIRST


def test_a_kept_port_someone_now_asks_for_explicitly_is_given_up():
    recorded = {"b": endpoint("b", port(80, 31000))}
    out = assign([svc("a", "web", port(80, 31000)), svc("b", "api", port(80))], recorded)
    assert out["a"][0].published_port == 31000
    assert out["b"][0].published_port == AUTO_FIRST, "the explicit request wins; the other gets a new one"


def test_a_full_range_publishes_nothing_rather_than_a_taken_port():
    size = AUTO_LAST - AUTO_FIRST + 1
    full = svc("a", "big", *[port(1, AUTO_FIRST + i) for i in range(size)])
    out = assign([full, svc("b", "late", port(80))], {})
    assert out["b"][0].published_port == 0


ports_st = st.lists(
    st.builds(port, st.integers(1, 200), st.one_of(st.just(0), st.integers(30000, 30040)), st.sampled_from([TCP, UDP]),
              st.sampled_from([INGRESS, HOST])),
    max_size=4,
)  # fmt: skip


@given(st.lists(ports_st, min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_picked_ports_never_collide_and_the_order_of_services_does_not_matter(spec_ports, rnd: random.Random):
    services = [svc(f"s{i:02d}", f"svc{i}", *ps) for i, ps in enumerate(spec_ports)]
    # only specs without clashes reach the allocator (the control API refuses the others)
    accepted: list[pb.Service] = []
    for s in services:
        if clash(s.spec, accepted) is None:
            accepted.append(s)
    out = assign(accepted, {})
    shuffled = list(accepted)
    rnd.shuffle(shuffled)
    assert assign(shuffled, {}) == out
    seen: set[tuple[int, int]] = set()
    for s in accepted:
        for asked, got in zip(s.spec.ports, out[s.id], strict=True):
            if asked.publish_mode == HOST or asked.published_port:
                assert got.published_port == asked.published_port
            else:
                assert AUTO_FIRST <= got.published_port <= AUTO_LAST
            if got.publish_mode == INGRESS:
                key = (got.protocol, got.published_port)
                assert key not in seen, f"{key} published twice"
                seen.add(key)


# -- networks of a service -----------------------------------------------------------------------------------


def net(nid: str, name: str, ingress: bool = False) -> pb.Network:
    return pb.Network(id=nid, spec=pb.NetworkSpec(name=name, ingress=ingress))


NETS = {n.id: n for n in (net("aaa111", "front"), net("aab222", "back"), net("ing333", "ingress", ingress=True))}


def test_a_network_is_found_by_id_then_name_then_unique_prefix():
    assert find_network(NETS, "aab222").spec.name == "back"
    assert find_network(NETS, "front").id == "aaa111"
    assert find_network(NETS, "aab").id == "aab222"
    assert find_network(NETS, "aa") is None, "an ambiguous prefix names nothing"
    assert find_network(NETS, "") is None and find_network(NETS, "nope") is None


def test_a_name_that_looks_like_another_networks_id_prefix_is_the_named_one():
    nets = {**NETS, "zzz999": net("zzz999", "aab")}
    assert find_network(nets, "aab").id == "zzz999", "the name wins over the prefix"


def test_targets_are_resolved_to_ids_in_place():
    spec = svc("a", "web", networks=("front", "aab")).spec
    assert network_problem(spec, NETS, [], {}) is None
    assert [a.target for a in spec.networks] == ["aaa111", "aab222"]


def test_an_unknown_network_is_refused_by_name():
    spec = svc("a", "web", networks=("front", "ghost")).spec
    assert network_problem(spec, NETS, [], {}) == "network ghost not found"


def test_the_routing_mesh_is_not_joined_by_name():
    spec = svc("a", "web", networks=("ingress",)).spec
    assert network_problem(spec, NETS, [], {}) == (
        "network ingress is the routing mesh: services join it by publishing ports (-p)"
    )


def test_a_port_clash_is_reported_after_the_networks_resolve():
    other = svc("b", "api", port(80, 8080))
    spec = svc("a", "web", port(80, 8080), networks=("front",)).spec
    assert network_problem(spec, NETS, [other], {}) == "port 8080/tcp is already published by service api"
