"""The nftables routing mesh, loaded into a namespace "node" with three task namespaces behind a bridge.

Topology (all namespaces made by the test): node ``h`` has a bridge ``br0`` 10.77.0.1/24 with tasks
``t0``..``t2`` (10.77.0.10-12, bridge ports in hairpin mode as the node plumbing sets them, each an HTTP server on 8080 that answers its name and the client's
address), and a link to an outside client ``c`` (10.78.0.2, gateway 10.78.0.1 on ``h``). The rules
are only ever loaded in ``h``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.worker.network.meshsync import MeshSync
from shoal.worker.network.netns import run_in
from shoal.worker.network.nft import ANY, HOST, Endpoint, Frontend, Mesh, transaction
from shoal.worker.network.nftapply import Nft, NftApplyError
from tests.fixtures.nft import frontend_st, unique_keys
from tests.integration.netkit import ECHO, Kit, clients, labels, needs_root, sh

pytestmark = [*needs_root, pytest.mark.skipif(sh("which", "nft", check=False) == "", reason="needs nft (nftables)")]

VIP = "10.96.0.10"
TASKS = {f"t{i}": f"10.77.0.{10 + i}" for i in range(3)}
BRIDGE_NET = "10.77.0.0/24"


@pytest.fixture(scope="module")
def node() -> Iterator[tuple[Kit, str]]:
    kit = Kit()
    try:
        h = kit.ns("h")
        kit.ip(h, "link add br0 type bridge\naddr add 10.77.0.1/24 dev br0\nlink set br0 up\n")
        kit.sysctl(h, "net.ipv4.ip_forward", "1")
        for short, addr in TASKS.items():
            t = kit.ns(short)
            kit.veth(h, f"v{short}", t, "eth0")
            kit.ip(h, f"link set v{short} master br0\nlink set v{short} type bridge_slave hairpin on\n")
            kit.ip(t, f"addr add {addr}/24 dev eth0\nroute add default via 10.77.0.1\n")
            kit.serve(t, short)
        u = kit.ns("u")  # a task of another network, on its own bridge
        kit.ip(h, "link add br1 type bridge\naddr add 10.79.0.1/24 dev br1\nlink set br1 up\n")
        kit.veth(h, "vu", u, "eth0")
        kit.ip(h, "link set vu master br1\nlink set vu type bridge_slave hairpin on\n")
        kit.ip(u, "addr add 10.79.0.10/24 dev eth0\nroute add default via 10.79.0.1\n")
        kit.serve(u, "u")
        c = kit.ns("c")
        kit.veth(h, "ext0", c, "eth0")
        kit.ip(h, "addr add 10.78.0.1/24 dev ext0\n")
        kit.ip(c, "addr add 10.78.0.2/24 dev eth0\nroute add default via 10.78.0.1\n")
        yield kit, h
    finally:
        kit.close()


@pytest.fixture
async def nft(node: tuple[Kit, str]) -> AsyncIterator[Nft]:
    kit, h = node
    applier = Nft(netns=kit.path(h))
    try:
        yield applier
    finally:
        await applier.remove()


def ns(kit: Kit, short: str) -> str:
    return f"{kit.prefix}{short}"


def web(port: int = 80, local: bool = True, vip: str | None = VIP, names=TASKS, mode: str = "ingress") -> Frontend:
    eps = tuple(Endpoint(TASKS[n], 8080, local) for n in names)
    return Frontend("web", port, eps, vip=vip, mode=mode)


async def test_vip_balances_over_every_task_and_keeps_an_outside_client_address(node, nft):
    kit, _ = node
    assert await nft.apply(Mesh((web(),), (BRIDGE_NET,)))
    answers = kit.get(ns(kit, "c"), VIP, 80, 90)
    count = labels(answers)
    assert set(count) == {"t0", "t1", "t2"}, answers[:5]
    assert min(count.values()) >= 10  # 90 random picks over 3: far from starving one
    assert clients(answers) == {"10.78.0.2"}  # local tasks: no SNAT


async def test_an_every_port_vip_answers_on_any_port_a_task_listens_on(node, nft):
    kit, _ = node
    kit.serve(ns(kit, "t2"), "t2-9100", port=9100)
    eps = tuple(Endpoint(TASKS[n], 0, True) for n in ("t1", "t2"))
    assert await nft.apply(Mesh((Frontend("web", 0, eps, ANY, vip=VIP),), (BRIDGE_NET,)))
    assert set(labels(kit.get(ns(kit, "c"), VIP, 8080, 30))) == {"t1", "t2"}  # no port was declared
    on_9100 = kit.get(ns(kit, "c"), VIP, 9100, 20)  # only t2 listens there: t1's picks are refused
    assert set(labels([a for a in on_9100 if not a.startswith("error")])) == {"t2-9100"}
    await nft.apply(Mesh((Frontend("web", 0, (), ANY, vip=VIP),), (BRIDGE_NET,)))
    assert all(a.startswith("error") for a in kit.get(ns(kit, "c"), VIP, 8080, 3)), "no endpoints: refused"


async def test_published_port_answers_on_the_node_address(node, nft):
    kit, _ = node
    await nft.apply(Mesh((web(port=30080, vip=None),), (BRIDGE_NET,)))
    answers = kit.get(ns(kit, "c"), "10.78.0.1", 30080, 45)
    assert set(labels(answers)) == {"t0", "t1", "t2"}
    assert clients(answers) == {"10.78.0.2"}


async def test_a_remote_endpoint_is_masqueraded(node, nft):
    kit, _ = node
    await nft.apply(Mesh((web(local=False, names=["t1"]),), (BRIDGE_NET,)))
    answers = kit.get(ns(kit, "c"), VIP, 80, 5)
    assert labels(answers) == {"t1": 5}
    assert clients(answers) == {"10.77.0.1"}  # the node's address on the way out


async def test_a_task_reaching_its_own_service_through_the_vip_gets_answers(node, nft):
    kit, _ = node
    await nft.apply(Mesh((web(),), (BRIDGE_NET,)))
    answers = kit.get(ns(kit, "t0"), VIP, 80, 30)
    assert not [a for a in answers if a.startswith("error")], answers
    assert set(labels(answers)) == {"t0", "t1", "t2"}
    assert clients(answers) == {"10.77.0.1"}  # hairpin on the bridge: masqueraded so replies come back


async def test_a_removed_endpoint_gets_no_new_connections(node, nft):
    kit, _ = node
    await nft.apply(Mesh((web(),), (BRIDGE_NET,)))
    await nft.apply(Mesh((web(names=["t0", "t2"]),), (BRIDGE_NET,)))
    assert set(labels(kit.get(ns(kit, "c"), VIP, 80, 40))) == {"t0", "t2"}


async def test_a_connection_in_flight_outlives_the_removal_of_its_endpoint(node, nft):
    kit, _ = node
    for short in ("t0", "t1"):
        kit.serve(ns(kit, short), short, port=9000, script=ECHO)
    eps = lambda names: tuple(Endpoint(TASKS[n], 9000, True) for n in names)  # noqa: E731
    await nft.apply(Mesh((Frontend("echo", 90, eps(["t0", "t1"]), vip=VIP),), (BRIDGE_NET,)))
    conn = run_in(kit.path(ns(kit, "c")), lambda: socket.create_connection((VIP, 90), timeout=3))
    with conn:
        conn.sendall(b"hello\n")
        first = conn.recv(100).decode()
        serving = first.split(":")[0]
        assert first == f"{serving}: hello\n"
        other = "t1" if serving == "t0" else "t0"
        await nft.apply(Mesh((Frontend("echo", 90, eps([other]), vip=VIP),), (BRIDGE_NET,)))
        conn.sendall(b"still there\n")
        assert conn.recv(100).decode() == f"{serving}: still there\n"  # tracked: keeps its endpoint
        await nft.apply(Mesh((Frontend("echo", 90, (), vip=VIP),), (BRIDGE_NET,)))  # the last one goes too
        conn.sendall(b"finishing\n")
        assert conn.recv(100).decode() == f"{serving}: finishing\n", "only new connections are refused"
    assert kit.get(ns(kit, "c"), VIP, 90, 1) == ["error ConnectionRefusedError"]


async def test_a_service_without_endpoints_refuses_at_once(node, nft):
    kit, _ = node
    await nft.apply(Mesh((web(names=[]), web(port=30081, vip=None, names=[])), (BRIDGE_NET,)))
    assert kit.get(ns(kit, "c"), VIP, 80, 1) == ["error ConnectionRefusedError"]
    assert kit.get(ns(kit, "c"), "10.78.0.1", 30081, 1) == ["error ConnectionRefusedError"]


async def test_host_mode_serves_only_this_nodes_tasks(node, nft):
    kit, _ = node
    fe = Frontend("web", 30082, (Endpoint(TASKS["t0"], 8080, True), Endpoint(TASKS["t1"], 8080, False)), mode=HOST)
    await nft.apply(Mesh((fe,), (BRIDGE_NET,)))
    assert labels(kit.get(ns(kit, "c"), "10.78.0.1", 30082, 10)) == {"t0": 10}


async def test_udp_and_tcp_on_one_port_are_separate_frontends(node, nft):
    kit, _ = node
    udp = Frontend("dns", 80, (Endpoint(TASKS["t2"], 53, True),), protocol="udp", vip=VIP)
    await nft.apply(Mesh((web(names=["t0"]), udp), (BRIDGE_NET,)))
    assert labels(kit.get(ns(kit, "c"), VIP, 80, 5)) == {"t0": 5}
    assert "udp . 80" in await nft.listing()


async def test_apply_is_skipped_when_nothing_changed_and_remove_leaves_no_table(node, nft):
    mesh = Mesh((web(),), (BRIDGE_NET,))
    await nft.check(mesh)
    assert await nft.apply(mesh) is True
    assert await nft.apply(mesh) is False
    assert await nft.exists()
    await nft.remove()
    assert not await nft.exists()
    await nft.remove()  # twice is fine
    assert await nft.apply(mesh) is True  # and the next apply loads it again


async def test_an_empty_mesh_still_loads_a_table(nft):
    assert await nft.apply(Mesh())
    assert await nft.exists()


async def test_a_missing_nft_binary_is_one_clear_error():
    with pytest.raises(NftApplyError, match="not installed"):
        await Nft(nft="nft-not-here").apply(Mesh())


async def test_the_machine_namespace_never_gets_the_table(node, nft):
    await nft.apply(Mesh((web(),), (BRIDGE_NET,)))
    assert "table ip shoal" not in sh("nft", "list", "tables", check=False)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(frontend_st, max_size=6).map(unique_keys),
       st.lists(st.sampled_from(["10.210.0.0/24", "10.0.0.0/8", "10.0.0.0/16", "192.168.1.5/24"]), max_size=3))
def test_the_kernel_accepts_every_rendered_mesh(node, fes, subnets):
    kit, h = node
    mesh = Mesh(tuple(fes), tuple(subnets))
    sh("ip", "netns", "exec", h, "nft", "-c", "-f", "-", stdin=transaction(mesh))


async def test_tasks_reach_the_node_only_on_the_dns_port(node, nft):
    kit, h = node
    kit.serve(h, "node-dns", port=53)
    kit.serve(h, "node-etcd", port=2379)
    await nft.apply(Mesh((web(),), (BRIDGE_NET,)))
    t0, c = ns(kit, "t0"), ns(kit, "c")
    assert labels(kit.get(t0, "10.77.0.1", 53, 1)) == {"node-dns": 1}
    assert kit.get(t0, "10.77.0.1", 2379, 1) == ["error TimeoutError"]  # dropped, as if nobody were there
    assert kit.get(t0, "10.78.0.1", 2379, 1) == ["error TimeoutError"]  # any address of the node
    assert labels(kit.get(c, "10.77.0.1", 2379, 1)) == {"node-etcd": 1}  # not a task: allowed
    assert labels(kit.get(t0, VIP, 80, 6))  # the mesh still serves tasks


def loaded(kit: Kit, name: str) -> tuple[int, dict]:
    """The table's handle and its contents without handles (chains with rules, map and set elements)."""
    items = json.loads(kit.run(name, "nft", "-j", "list", "table", "ip", "shoal"))["nftables"]
    handle, content = 0, {}

    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k != "handle"}
        return [strip(v) for v in x] if isinstance(x, list) else x

    for item in items:
        kind, body = next(iter(item.items()))
        if kind == "table":
            handle = body["handle"]
        elif kind == "rule":
            content.setdefault(("chain", body["chain"]), []).append(json.dumps(strip(body["expr"]), sort_keys=True))
        elif kind == "chain":
            content.setdefault(("chain", body["name"]), [])
        elif kind in ("map", "set"):
            content[(kind, body["name"])] = sorted(json.dumps(e, sort_keys=True) for e in body.get("elem", []))
    return handle, content


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Kit, str, str]]:
    kit = Kit()
    try:
        yield kit, kit.ns("da"), kit.ns("db")
    finally:
        kit.close()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.lists(frontend_st, max_size=5).map(unique_keys),
                          st.lists(st.sampled_from(["10.210.0.0/24", "10.0.0.0/8", "192.168.1.0/24"]), max_size=2)),
                min_size=2, max_size=5))
def test_deltas_leave_the_kernel_with_what_a_whole_load_gives(pair, steps):
    kit, a, b = pair

    async def run() -> None:
        incremental, whole = Nft(kit.path(a)), Nft(kit.path(b))
        try:
            await incremental.apply(Mesh(tuple(steps[0][0]), tuple(steps[0][1])))
            first_handle, _ = loaded(kit, a)
            for fes, subnets in steps[1:]:
                mesh = Mesh(tuple(fes), tuple(subnets))
                await incremental.apply(mesh)
                whole.current = None  # force a whole replacement as the reference
                await whole.apply(mesh)
                handle, content = loaded(kit, a)
                assert handle == first_handle  # never replaced: every step went as a delta
                assert content == loaded(kit, b)[1]
        finally:
            await incremental.remove()
            await whole.remove()

    asyncio.run(run())


async def test_tasks_of_two_networks_meet_only_through_the_mesh(node, nft):
    kit, _ = node
    other = Frontend("other", 81, (Endpoint("10.79.0.10", 8080, True),), vip=VIP)
    await nft.apply(Mesh((web(), other), (BRIDGE_NET, "10.79.0.0/24")))
    t0, c = ns(kit, "t0"), ns(kit, "c")
    assert kit.get(t0, "10.79.0.10", 8080, 1) == ["error TimeoutError"]  # routed across: dropped
    assert kit.get(ns(kit, "u"), TASKS["t1"], 8080, 1) == ["error TimeoutError"]  # and the other way
    assert labels(kit.get(t0, VIP, 81, 2)) == {"u": 2}  # a service of the other network: through the VIP
    assert labels(kit.get(c, "10.79.0.10", 8080, 1)) == {"u": 1}  # not from a task: routed as before


async def test_a_burst_of_changes_ends_with_the_last_one_loaded(node, nft):
    kit, h = node
    sync = MeshSync(nft)
    runner = asyncio.create_task(sync.run())
    try:
        for n in range(1, 21):
            sync.set(Mesh((web(names=list(TASKS)[: 1 + n % 3]),), (BRIDGE_NET,)))
        await asyncio.wait_for(sync.settled(), 10)
        assert sync.loads < 20  # coalesced
        assert set(labels(kit.get(ns(kit, "c"), VIP, 80, 30))) == {"t0", "t1", "t2"}  # 20 % 3 == 2: all three
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
