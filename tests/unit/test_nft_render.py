"""The routing-mesh renderer: what the nft text means (maps, balancing, dnat, when to SNAT), not its bytes."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.worker.network.nft import (
    ANY,
    HOST,
    MASQ_MARK,
    Endpoint,
    Frontend,
    Mesh,
    NftError,
    build,
    chain_name,
    removal,
    render,
    served_by,
    transaction,
)
from shoal.worker.network.nfttable import delta
from tests.fixtures.nft import frontend_st, unique_keys


def chains(text: str) -> dict[str, list[str]]:
    """chain name -> its rule lines (hook lines included)."""
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        s = line.strip()
        if m := re.fullmatch(r"chain (\S+) \{", s):
            current = out.setdefault(m.group(1), [])
        elif s == "}":
            current = None
        elif current is not None:
            current.append(s)
    return out


def elements(text: str, block: str) -> list[str]:
    """The elements of the set or map called ``block`` (empty when it has none)."""
    m = re.search(rf"(?:map|set) {re.escape(block)} \{{\n(.*?)\n\t\}}", text, re.S)
    assert m, f"no {block} in the ruleset"
    el = re.search(r"elements = \{ (.*) \}", m.group(1))
    return el.group(1).split(", ") if el else []


def ep(i: int, local: bool = False, port: int = 8080) -> Endpoint:
    return Endpoint(f"10.0.1.{i}", port, local)


def targets(text: str, fe: Frontend) -> list[str]:
    """The dnat targets reachable from a frontend's chain, in its vmap order."""
    c = chains(text)
    rule = c[chain_name(fe)][0]
    picked = re.findall(r"goto (\S+?)(?:,| \}|$)", rule)
    return [next(r for r in c[p] if "dnat to" in r).rsplit(" ", 1)[1] for p in picked]


def test_a_vip_maps_to_its_chain_which_balances_over_every_endpoint():
    fe = Frontend("web", 80, (ep(1), ep(2), ep(3)), vip="10.0.0.2")
    text = render(Mesh((fe,)))
    assert elements(text, "vips") == [f"10.0.0.2 . tcp . 80 : goto {chain_name(fe)}"]
    assert chains(text)[chain_name(fe)][0].startswith("numgen random mod 3 vmap {")
    assert targets(text, fe) == ["10.0.1.1:8080", "10.0.1.2:8080", "10.0.1.3:8080"]
    assert elements(text, "published") == []


def test_a_single_endpoint_needs_no_random_pick():
    fe = Frontend("web", 80, (ep(1),), vip="10.0.0.2")
    text = render(Mesh((fe,)))
    (rule,) = chains(text)[chain_name(fe)]
    assert re.fullmatch(rf"goto {chain_name(fe)}-ep-[0-9a-f]{{8}}", rule)
    assert targets(text, fe) == ["10.0.1.1:8080"]


def test_a_published_port_matches_only_this_nodes_addresses_and_not_loopback():
    fe = Frontend("web", 8080, (ep(1),))
    text = render(Mesh((fe,)))
    assert elements(text, "published") == [f"tcp . 8080 : goto {chain_name(fe)}"]
    assert "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @published" in \
        chains(text)["services"]


def test_local_endpoints_keep_the_client_address_unless_it_comes_from_our_bridges():
    local, remote = ep(1, local=True), ep(2, local=False)
    fe = Frontend("web", 80, (local, remote), vip="10.0.0.2")
    c = chains(render(Mesh((fe,), ("10.210.3.0/24",))))
    first, second = re.findall(r"goto (\S+?)(?:,| \}|$)", c[chain_name(fe)][0])
    assert c[first] == ["ip saddr @local-sources jump mark-for-masquerade", "meta l4proto tcp dnat to 10.0.1.1:8080"]
    assert c[second] == ["jump mark-for-masquerade", "meta l4proto tcp dnat to 10.0.1.2:8080"]
    assert c["mark-for-masquerade"] == [f"meta mark set meta mark | {MASQ_MARK:#x}"]
    assert c["nat-postrouting"][1] == f"meta mark & {MASQ_MARK:#x} == {MASQ_MARK:#x} masquerade"


def test_local_subnets_are_normalized_and_deduplicated():
    text = render(Mesh((), ("10.210.3.7/24", "10.210.3.0/24", "10.9.0.0/16")))
    assert elements(text, "local-sources") == ["10.210.3.0/24", "10.9.0.0/16"]
    assert elements(render(Mesh()), "local-sources") == []


def test_frontends_without_endpoints_are_rejected_not_balanced():
    vip = Frontend("db", 5432, (), vip="10.0.0.3")
    pub = Frontend("db", 15432, ())
    text = render(Mesh((vip, pub)))
    assert elements(text, "vips-empty") == ["10.0.0.3 . tcp . 5432 : goto reject-chain"]
    assert elements(text, "published-empty") == ["tcp . 15432 : goto reject-chain"]
    assert elements(text, "vips") == [] and chain_name(vip) not in chains(text)
    assert chains(text)["reject-chain"] == ["meta l4proto tcp reject with tcp reset", "reject"]


def test_rejection_happens_before_routing_and_for_local_clients():
    c = chains(render(Mesh()))
    assert c["nat-prerouting"] == ["type nat hook prerouting priority -100; policy accept;", "jump no-endpoints",
                                   "jump services"]
    assert c["nat-output"] == ["type nat hook output priority -100; policy accept;",  # dstnat rejected by nft 1.0.6
                               "jump no-endpoints", "jump services"]


def test_host_mode_balances_only_local_tasks_and_is_absent_without_one():
    fe = Frontend("web", 9000, (ep(1, local=True), ep(2)), mode=HOST)
    assert served_by(fe) == (ep(1, local=True),)
    text = render(Mesh((fe,)))
    assert targets(text, fe) == ["10.0.1.1:8080"]
    nothing = render(Mesh((Frontend("web", 9000, (ep(2),), mode=HOST),)))
    assert elements(nothing, "published") == [] and elements(nothing, "published-empty") == []


def test_udp_frontends_dnat_udp():
    fe = Frontend("dns", 53, (ep(1, port=53),), protocol="udp", vip="10.0.0.4")
    text = render(Mesh((fe,)))
    assert elements(text, "vips") == [f"10.0.0.4 . udp . 53 : goto {chain_name(fe)}"]
    assert targets(text, fe) == ["10.0.1.1:53"]
    assert "meta l4proto udp dnat to 10.0.1.1:53" in text


def test_duplicate_endpoints_are_balanced_once():
    fe = Frontend("web", 80, (ep(1), ep(1), ep(2)), vip="10.0.0.2")
    assert targets(render(Mesh((fe,))), fe) == ["10.0.1.1:8080", "10.0.1.2:8080"]


def test_two_services_on_one_published_port_are_refused_by_name():
    with pytest.raises(NftError, match="published port tcp 8080 is claimed by both api and web"):
        render(Mesh((Frontend("web", 8080, (ep(1),)), Frontend("api", 8080, (ep(2),)))))


def test_same_port_on_different_protocols_or_vips_is_fine():
    fes = (Frontend("a", 80, (ep(1),)), Frontend("b", 80, (ep(2),), protocol="udp"),
           Frontend("c", 80, (ep(3),), vip="10.0.0.5"), Frontend("d", 80, (ep(4),), vip="10.0.0.6"))
    text = render(Mesh(fes))
    assert len(elements(text, "published")) == 2 and len(elements(text, "vips")) == 2


@pytest.mark.parametrize(("fe", "msg"), [
    (Frontend("web", 80, (ep(1),), protocol="sctp"), "protocol 'sctp' is not one of tcp, udp"),
    (Frontend("web", 0, (ep(1),)), "port 0 is out of range"),
    (Frontend("web", 80, (ep(1, port=70000),)), "port 70000 is out of range"),
    (Frontend("web", 80, (Endpoint("10.0.0.300", 80),)), "'10.0.0.300' is not an IPv4 address"),
    (Frontend("web", 80, (ep(1),), vip="fd00::1"), "'fd00::1' is not an IPv4 address"),
    (Frontend("web", 80, (ep(1),), mode="bridge"), "publish mode 'bridge' is not ingress or host"),
])
def test_bad_data_is_refused_naming_the_service(fe, msg):
    with pytest.raises(NftError, match=re.escape(f"service web: {msg}")):
        render(Mesh((fe,)))


def test_chain_names_are_unique_even_when_service_names_clean_up_alike():
    a, b = Frontend("a/b", 80, (ep(1),)), Frontend("a_b", 81, (ep(1),))
    a2 = Frontend("a_b", 80, (ep(1),))
    assert chain_name(a) != chain_name(a2)
    assert re.fullmatch(r"pub-a_b-tcp-80-[0-9a-f]{6}", chain_name(a))
    assert chain_name(b).startswith("pub-a_b-tcp-81-")
    assert chain_name(Frontend("x", 1, vip="10.0.0.1")).startswith("vip-x-tcp-1-")


def test_the_transaction_replaces_the_whole_table_and_removal_touches_only_it():
    text = transaction(Mesh())
    assert text.startswith("add table ip shoal\ndelete table ip shoal\ntable ip shoal {\n")
    assert removal() == "add table ip shoal\ndelete table ip shoal\n"
    assert re.findall(r"^table (\S+ \S+)", text, re.M) == ["ip shoal"]


@settings(max_examples=150, deadline=None)
@given(st.lists(frontend_st, max_size=8).map(unique_keys), st.randoms(use_true_random=False))
def test_every_served_endpoint_is_reachable_exactly_once_and_order_does_not_matter(fes, rnd: random.Random):
    text = render(Mesh(tuple(fes)))
    shuffled = list(fes)
    rnd.shuffle(shuffled)
    assert render(Mesh(tuple(shuffled))) == text
    c = chains(text)
    for fe in fes:
        eps = served_by(fe)
        if eps:
            assert sorted(targets(text, fe)) == sorted(f"{e.ip}:{e.port}" for e in eps)
            if len(eps) > 1:
                assert c[chain_name(fe)][0].startswith(f"numgen random mod {len(eps)} vmap")
        else:
            assert chain_name(fe) not in c
    assert text.count("{") == text.count("}")


def base_chains(text: str) -> dict[str, str]:
    """hook -> the names of the chains on it, in order, as "type name" (what every packet there meets)."""
    out: dict[str, str] = {}
    for name, rules in chains(text).items():
        if rules and (m := re.match(r"type (\w+) hook (\w+)", rules[0])):
            out[m.group(2)] = f"{out.get(m.group(2), '')} {m.group(1)} {name}".strip()
    return out


def test_only_a_connections_first_packet_meets_the_service_lookups():
    # nat chains run for the first packet of a connection only: there the no-endpoints check and the
    # balancing; every other packet meets one short filter chain per hook at most
    assert base_chains(render(Mesh())) == {
        "prerouting": "nat nat-prerouting filter raw-prerouting", "output": "nat nat-output filter raw-output",
        "postrouting": "nat nat-postrouting", "input": "filter filter-input", "forward": "filter filter-forward"}
    c = chains(render(Mesh()))
    assert c["raw-output"][1:] == ["udp dport 4789 notrack"]
    assert not any("ct state new" in r for rules in c.values() for r in rules)


def test_the_overlays_and_what_their_bridges_forward_are_not_tracked():
    raw = chains(render(Mesh()))["raw-prerouting"]
    assert raw == ["type filter hook prerouting priority raw; policy accept;", "udp dport 4789 notrack",
                   'iifname "shob*" fib daddr type != local notrack']


def test_tasks_reach_the_node_itself_only_for_dns_replies_and_ping():
    c = chains(render(Mesh((), ("10.210.0.0/24",))))
    assert c["filter-input"] == ["type filter hook input priority 0; policy accept;",
                                 "ct state established,related accept", "ip saddr @local-sources jump task-input"]
    assert c["task-input"] == ["ct state established,related accept", "meta l4proto icmp accept",
                               "meta l4proto { tcp, udp } th dport { 53 } accept", "drop"]
    assert "th dport { 53, 5353 }" in chains(render(Mesh(task_ports=(5353, 53, 53))))["task-input"][2]
    assert chains(render(Mesh(task_ports=())))["task-input"][-1] == "drop"
    with pytest.raises(NftError, match="task port 0 is out of range"):
        render(Mesh(task_ports=(0,)))


# -- deltas ------------------------------------------------------------------------------------
def delta_lines(old: Mesh, new: Mesh) -> list[str]:
    text = delta(build(old), build(new))
    assert text is not None
    return text.splitlines()


WEB2 = Frontend("web", 80, (ep(1), ep(2)), vip="10.0.0.2")
WEB3 = Frontend("web", 80, (ep(1), ep(2), ep(3)), vip="10.0.0.2")


def test_an_unchanged_mesh_has_an_empty_delta():
    assert delta(build(Mesh((WEB2,))), build(Mesh((WEB2,)))) == ""


def test_a_new_endpoint_adds_its_chain_and_rewrites_only_the_frontend_chain():
    lines = delta_lines(Mesh((WEB2,)), Mesh((WEB3,)))
    name = chain_name(WEB2)
    assert [line.split()[:2] for line in lines] == [["add", "chain"], ["add", "rule"], ["add", "rule"],
                                                    ["flush", "chain"], ["add", "rule"]]
    assert lines[0].startswith(f"add chain ip shoal {name}-ep-")
    assert lines[2].endswith("dnat to 10.0.1.3:8080")
    assert lines[3] == f"flush chain ip shoal {name}"
    assert "numgen random mod 3" in lines[4]


def test_a_removed_service_loses_its_element_then_its_chains_frontend_first():
    lines = delta_lines(Mesh((WEB2,)), Mesh())
    name = chain_name(WEB2)
    assert lines[0] == "delete element ip shoal vips { 10.0.0.2 . tcp . 80 }"
    deleted = [line.split()[-1] for line in lines if line.startswith("delete chain")]
    assert deleted[0] == name and len(deleted) == 3 and all(d.startswith(f"{name}-ep-") for d in deleted[1:])
    for d in deleted:  # each chain is emptied just before it goes
        assert lines.index(f"flush chain ip shoal {d}") == lines.index(f"delete chain ip shoal {d}") - 1


def test_a_service_losing_its_last_endpoint_moves_to_the_reject_map():
    empty = Frontend("web", 80, (), vip="10.0.0.2")
    lines = delta_lines(Mesh((WEB2,)), Mesh((empty,)))
    assert "delete element ip shoal vips { 10.0.0.2 . tcp . 80 }" in lines
    assert "add element ip shoal vips-empty { 10.0.0.2 . tcp . 80 : goto reject-chain }" in lines
    back = delta_lines(Mesh((empty,)), Mesh((WEB2,)))
    assert back.index(f"add element ip shoal vips {{ 10.0.0.2 . tcp . 80 : goto {chain_name(WEB2)} }}") > \
        max(i for i, line in enumerate(back) if line.startswith("add rule"))  # chains exist before the map points


def test_local_subnets_are_replaced_as_a_set():
    lines = delta_lines(Mesh((), ("10.1.0.0/24",)), Mesh((), ("10.2.0.0/24", "10.3.0.0/24")))
    assert lines == ["flush set ip shoal local-sources", "add element ip shoal local-sources { 10.2.0.0/24, 10.3.0.0/24 }",
                     "flush set ip shoal cross-networks",
                     "add element ip shoal cross-networks { 10.2.0.0/24 . 10.3.0.0/24, 10.3.0.0/24 . 10.2.0.0/24 }"]
    assert delta_lines(Mesh((), ("10.1.0.0/24",)), Mesh()) == ["flush set ip shoal local-sources",
                                                               "flush set ip shoal cross-networks"]


def test_changed_task_ports_need_a_whole_replacement():
    assert delta(build(Mesh(task_ports=(53,))), build(Mesh(task_ports=(53, 5353)))) is None


def test_an_endpoint_turning_local_gets_a_new_chain_with_the_source_check():
    before = Frontend("web", 80, (ep(1, local=False),), vip="10.0.0.2")
    after = Frontend("web", 80, (ep(1, local=True),), vip="10.0.0.2")
    lines = delta_lines(Mesh((before,)), Mesh((after,)))
    assert "ip saddr @local-sources jump mark-for-masquerade" in lines[1]
    assert sum(line.startswith("delete chain") for line in lines) == 1


def test_tasks_of_different_networks_are_not_routed_to_each_other_except_through_the_mesh():
    text = render(Mesh((), ("10.210.0.0/24", "10.220.0.0/24", "10.220.0.0/25")))
    c = chains(text)
    assert c["filter-forward"] == ["type filter hook forward priority 0; policy accept;",
                                   "ct state established,related accept",
                                   "ip saddr . ip daddr @cross-networks jump task-forward"]
    assert c["task-forward"] == ["ct state established,related accept", "ct status dnat accept", "drop"]
    # pairs of different networks only (traffic inside one is bridged and passes this hook too)
    assert elements(text, "cross-networks") == ["10.210.0.0/24 . 10.220.0.0/24", "10.220.0.0/24 . 10.210.0.0/24"]
    assert elements(render(Mesh((), ("10.210.0.0/24",))), "cross-networks") == []


def test_an_every_port_vip_is_looked_up_on_its_address_alone_and_keeps_the_port():
    fe = Frontend("web", 0, (Endpoint("10.0.1.1", 0, True), Endpoint("10.0.1.2", 0)), ANY, vip="10.0.0.2")
    text = render(Mesh((fe,), ("10.0.1.0/24",)))
    assert elements(text, "vips-any") == [f"10.0.0.2 : goto {chain_name(fe)}"]
    assert elements(text, "vips") == []
    assert targets(text, fe) == ["10.0.1.1", "10.0.1.2"], "dnat to the address only: the port is kept"
    assert "meta l4proto { tcp, udp } ip daddr vmap @vips-any" in chains(text)["services"]


def test_an_every_port_vip_without_endpoints_is_rejected_and_gets_them_back_in_a_delta():
    empty = Frontend("web", 0, (), ANY, vip="10.0.0.2")
    full = Frontend("web", 0, (Endpoint("10.0.1.1", 0),), ANY, vip="10.0.0.2")
    text = render(Mesh((empty,)))
    assert elements(text, "vips-any-empty") == ["10.0.0.2 : goto reject-chain"]
    assert "meta l4proto { tcp, udp } ip daddr vmap @vips-any-empty" in chains(text)["no-endpoints"]
    lines = delta(build(Mesh((empty,))), build(Mesh((full,)))).splitlines()
    assert "delete element ip shoal vips-any-empty { 10.0.0.2 }" in lines
    assert f"add element ip shoal vips-any {{ 10.0.0.2 : goto {chain_name(full)} }}" in lines


@pytest.mark.parametrize("fe", [
    Frontend("web", 80, (), ANY, vip="10.0.0.2"),
    Frontend("web", 0, (Endpoint("10.0.1.1", 80),), ANY, vip="10.0.0.2"),
    Frontend("web", 0, (), ANY),
])
def test_every_port_is_only_for_a_vip_with_port_0(fe):
    with pytest.raises(NftError, match="every port"):
        build(Mesh((fe,)))
