"""Direct server return as data (worker/network/dsr.py): the split of each published TCP port, the netdev
table it makes, the inet table's side (``dsr-peers``, ``dsr-ports``), and the transactions between them."""

from __future__ import annotations

import pytest

from shoal.worker.network import dsr
from shoal.worker.network.nft import Endpoint, Frontend, Mesh, NftError, build, chain_name, render
from shoal.worker.network.nfttable import delta, replace_text
from shoal.worker.network.plan import INGRESS, NODE, Port, ServiceNet, TaskNet, mesh_for

ME, B, C = "192.168.0.1", "192.168.0.2", "192.168.0.3"
LINK = dsr.Link("eth0", ME, ((B, "10.210.2.0/24"), (C, "10.210.3.0/24")))
WEB = ServiceNet("web", (INGRESS,), ports=(Port(80, 8080), Port(53, 5353, "udp"), Port(22, 2222, mode="host")))


def task(node: str, address: str, serving: bool = True) -> TaskNet:
    return TaskNet("web", node, {NODE: address, INGRESS: "10.255.0.9"}, serving=serving)


def shares(tasks: list[TaskNet]) -> tuple[dsr.Share, ...]:
    mesh = mesh_for("a", [WEB], tasks, ("10.210.1.0/24",), routed=("10.210.2.0/24", "10.210.3.0/24"), dsr=LINK)
    assert mesh.dsr is not None
    return mesh.dsr.shares


def test_each_published_tcp_port_is_split_by_the_serving_tasks_of_each_node():
    tasks = [task("a", "10.210.1.5"), task("b", "10.210.2.5"), task("c", "10.210.3.5"), task("c", "10.210.3.6"),
             task("c", "10.210.3.7", serving=False), task("d", "10.210.4.5")]
    assert shares(tasks) == (dsr.Share(8080, ((B, 1), (C, 2), (dsr.SELF, 1), (dsr.STACK, 1))),), \
        "UDP and host mode keep the conntrack mesh; a node off the link (d) keeps its share through it"


def test_a_port_no_peer_serves_has_no_share_and_off_means_no_table():
    assert shares([task("a", "10.210.1.5"), task("d", "10.210.4.5")]) == ()
    assert mesh_for("a", [WEB], [task("b", "10.210.2.5")], ("10.210.1.0/24",)).dsr is None
    assert "netdev" not in render(Mesh((Frontend("web", 8080, (Endpoint("10.210.2.5", 80),)),)))


def table(weights: tuple[tuple[str, int], ...], port: int = 8080) -> dsr.NetdevTable:
    return dsr.netdev_table(dsr.Dsr(LINK, (dsr.Share(port, weights),)))


def test_the_pick_is_weighted_and_each_target_pins_then_forwards_or_keeps():
    t = table(((B, 1), (C, 2), (dsr.SELF, 1)))
    assert t.name == "shoal-dsr-eth0" and t.pick == {8080: "goto pick-8080"}
    assert t.chains["pick-8080"] == (
        f"numgen random mod 4 vmap {{ 0 : goto to-{B}, 1-2 : goto to-{C}, 3 : goto to-self }}",)
    assert t.chains[f"to-{C}"] == (
        f"ip saddr {{ {C}, 10.210.3.0/24 }} accept",
        f'add @flows {{ {dsr.KEY} timeout 60s : 0xc0a80003 }} fwd ip to {C} device "eth0"',
        "accept")
    assert t.chains["to-self"][0].endswith(f"meta mark set meta mark | {dsr.LOCAL_MARK:#x} accept")
    assert table(((B, 3),)).chains["pick-8080"] == (f"goto to-{B}",), "one target: no numgen"


def test_the_per_packet_path_looks_up_and_renews_only_on_data_closing_and_a_sample():
    t = table(((B, 1),))
    pinned = t.chains["pinned"]
    assert [r for r in pinned if "update" in r or "add @" in r] == [], "no element written per packet here"
    assert pinned[0] == f"meta mark set {dsr.KEY} map @flows", "a pin is read as a mark, not a map looked up as a set"
    assert pinned[1] == f"meta mark vmap {{ 0xc0a80002 : goto at-{B}, 0xc0a80003 : goto at-{C} }}", \
        "every peer on the link, not only those with a share now: a pin outlives its share"
    assert pinned[-1] == "tcp flags & (syn | ack) == syn tcp dport vmap @pick", "only a SYN is picked a node"
    at_b = t.chains[f"at-{B}"]
    assert at_b[0] == f"tcp flags & psh == psh update @flows {{ {dsr.KEY} timeout 900s : meta mark }}"
    assert at_b[2] == f"tcp flags & (fin | rst) != 0 update @flows {{ {dsr.KEY} timeout 120s : meta mark }}"
    assert at_b[-1] == f'fwd ip to {B} device "eth0"'
    assert t.chains["at-self"][0] == f"tcp flags & psh == psh update @local {{ {dsr.KEY} timeout 900s }}"
    assert dsr.mark_of("10.0.0.2") == "0x0a000002"
    assert not any(r.startswith(f"{dsr.KEY} @flows") for c in t.chains.values() for r in c), \
        "Debian 12's kernel (6.1) refuses a map looked up as a set"
    text = dsr.full_text(table(((B, 1),)))
    assert f"ip daddr {ME} tcp dport @ports goto pinned" in text and 'device "eth0"' in text
    assert f"size {dsr.FLOWS_SIZE}" in text and "add element netdev shoal-dsr-eth0 ports { 8080 }" in text


def test_a_weight_change_rewrites_the_pick_chain_only_and_a_port_is_never_taken_out_of_ports():
    old, new = table(((B, 1), (C, 1))), table(((B, 2), (C, 1)))
    assert dsr.delta(old, new) == ("flush chain netdev shoal-dsr-eth0 pick-8080\n"
                                   f"add rule netdev shoal-dsr-eth0 pick-8080 {new.chains['pick-8080'][0]}\n")
    gone = dsr.netdev_table(dsr.Dsr(LINK))
    text = dsr.delta(old, gone)
    assert "delete element netdev shoal-dsr-eth0 pick { 8080 }" in text and "ports" not in text
    assert text.index("delete chain netdev shoal-dsr-eth0 pick-8080") < text.index(f"delete chain netdev shoal-dsr-eth0 to-{B}")
    assert dsr.delta(old, old) == ""


def test_a_new_uplink_makes_a_new_table_and_a_first_load_keeps_the_pins():
    moved = dsr.netdev_table(dsr.Dsr(dsr.Link("eth1", ME, LINK.peers)))
    text = dsr.delta(table(((B, 1),)), moved)
    assert text.startswith("add table netdev shoal-dsr-eth0\ndelete table netdev shoal-dsr-eth0\n")
    assert "table netdev shoal-dsr-eth1 {" in text
    first = dsr.first_load(table(((B, 1),)), {"shoal-dsr-eth0": ["pinned", "uplink-in"], "shoal-dsr-old0": []})
    assert "delete table netdev shoal-dsr-old0" in first and "delete table netdev shoal-dsr-eth0" not in first
    assert "flush chain netdev shoal-dsr-eth0 pinned" in first and "delete chain netdev shoal-dsr-eth0 uplink-in" in first
    assert "flush table" not in first
    assert "flows" not in first.split("table netdev shoal-dsr-eth0 {")[0], "flows is neither flushed nor deleted"
    assert dsr.first_load(None, {"shoal-dsr-eth0": []}) == dsr.removal("shoal-dsr-eth0")


def frontend(eps: tuple[Endpoint, ...], protocol: str = "tcp", mode: str = "ingress") -> Frontend:
    return Frontend("web", 8080, eps, protocol, mode=mode)


def dsr_mesh(*fes: Frontend) -> Mesh:
    return Mesh(fes, ("10.210.1.0/24",), dsr=dsr.Dsr(LINK, (dsr.Share(8080, ((B, 1),)),)))


def test_a_forwarded_connection_goes_to_this_nodes_own_tasks_unmasqueraded():
    here, there = Endpoint("10.210.1.5", 80, True), Endpoint("10.210.2.5", 80, False)
    fe = frontend((here, there))
    rs = build(dsr_mesh(fe))
    assert rs.maps["dsr-ports"] == {"8080": f"goto {chain_name(fe)}-dsr"}
    (only,) = rs.chains[f"{chain_name(fe)}-dsr"]
    assert only.startswith("goto ") and "-ep-" in only, "this node's task only, through its endpoint chain"
    assert rs.chains[only.split()[1]][0] == "ip saddr @local-sources jump mark-for-masquerade"
    assert rs.uplink == "eth0" and rs.peers == (B, C)


def test_the_share_no_peer_serves_is_marked_and_balanced_over_those_tasks_only():
    assert table(((B, 1), (dsr.STACK, 1))).chains["to-stack"][0].endswith(
        f"meta mark set meta mark | {dsr.STACK_MARK:#x} accept")
    on_link, behind = Endpoint("10.210.2.5", 80, False), Endpoint("10.210.4.5", 80, False)
    fe = frontend((on_link, behind))
    rs = build(dsr_mesh(fe))
    assert rs.maps["dsr-stack"] == {"8080": f"goto {chain_name(fe)}-stack"}
    (only,) = rs.chains[f"{chain_name(fe)}-stack"]
    assert rs.chains[only.split()[1]][-1] == "meta l4proto tcp dnat to 10.210.4.5:80", "the task behind a router only"
    assert build(dsr_mesh(frontend((on_link,)))).maps["dsr-stack"] == {"8080": f"goto {chain_name(fe)}"}
    assert f"meta mark & {dsr.STACK_MARK:#x} == {dsr.STACK_MARK:#x} tcp dport vmap @dsr-stack" in render(dsr_mesh(fe))


def test_with_no_task_here_the_ports_chain_serves_it_and_with_none_anywhere_it_is_refused():
    fe = frontend((Endpoint("10.210.2.5", 80, False),))
    assert build(dsr_mesh(fe)).maps["dsr-ports"] == {"8080": f"goto {chain_name(fe)}"}
    assert build(dsr_mesh(frontend(()))).maps["dsr-ports"] == {"8080": "goto reject-chain"}
    assert build(dsr_mesh(frontend((Endpoint("10.210.2.5", 80),), "udp"))).maps["dsr-ports"] == {}


def test_the_inet_table_takes_forwarded_connections_in_and_never_sends_them_back():
    text = render(dsr_mesh(frontend((Endpoint("10.210.2.5", 80),))))
    assert 'iifname "eth0" ip daddr @dsr-peers tcp dport vmap @dsr-ports' in text
    assert f"meta mark & {dsr.LOCAL_MARK:#x} == {dsr.LOCAL_MARK:#x} tcp dport vmap @dsr-ports" in text
    assert 'iifname "eth0" oifname "eth0" ip daddr @dsr-peers meta l4proto tcp reject with tcp reset' in text
    plain = render(Mesh((frontend((Endpoint("10.210.2.5", 80),)),)))
    assert "@dsr-peers tcp" not in plain and "@dsr-peers meta l4proto tcp reject" not in plain


def test_turning_it_on_replaces_the_inet_table_and_a_peer_change_is_a_delta():
    off, on = build(Mesh()), build(dsr_mesh())
    assert delta(off, on) is None, "new base rules: replaced whole"
    fewer = build(Mesh((), ("10.210.1.0/24",), dsr=dsr.Dsr(dsr.Link("eth0", ME, LINK.peers[:1]))))
    text = delta(on, fewer)
    assert text is not None and f"add element ip shoal dsr-peers {{ {B} }}" in text
    assert "table netdev shoal-dsr-eth0 {" in replace_text(on, {}) and "netdev" not in replace_text(off, {})


def test_bad_direct_server_return_data_is_refused_by_name():
    with pytest.raises(NftError, match="not an IPv4 address"):
        build(Mesh(dsr=dsr.Dsr(dsr.Link("eth0", "nope"))))
    with pytest.raises(NftError, match="not a device name"):
        build(Mesh(dsr=dsr.Dsr(dsr.Link('eth0"; flush ruleset', ME))))
