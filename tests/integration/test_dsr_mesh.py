"""Direct server return for published TCP ports between nodes on one link (worker/network/dsr.py), on namespaces.

Three nodes ``h1`` (192.168.94.1, runs no task), ``h2`` (.2, task ``t2``) and ``h3`` (.3, tasks ``t3`` and
``t4``) and a client ``c`` (.9) hang off a switch. Each node is made as an agent with ``--direct-routing``
makes it (``NodeNetwork.ensure``: routes to the others' task subnets, and the link direct server return
uses), its mesh planned by ``mesh_for`` and loaded by ``Nft``. Every server answers "<task> <client address>".
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from shoal.worker.network import dsr
from shoal.worker.network.nftapply import Nft
from shoal.worker.network.node import task_ifname
from shoal.worker.network.plan import INGRESS, NODE, Port, ServiceNet, TaskNet, mesh_for
from shoal.worker.network.topology import NodeNetwork, NodeSpec
from tests.integration.netkit import ECHO, Kit, clients, labels, needs_root, sh

pytestmark = [*needs_root, pytest.mark.skipif(sh("which", "nft", check=False) == "", reason="needs nft (nftables)")]

HOSTS = (1, 2, 3)
UNDERLAY = {i: f"192.168.94.{i}" for i in HOSTS}
CLIENT = "192.168.94.9"
TASKS = {"t2": (2, "10.210.2.2"), "t3": (3, "10.210.3.2"), "t4": (3, "10.210.3.3")}
PUBLISHED, ECHO_PORT = 30080, 30090
SERVICES = [ServiceNet("web", (INGRESS,), ports=(Port(8080, PUBLISHED),)),
            ServiceNet("echo", (INGRESS,), ports=(Port(9090, ECHO_PORT),))]

# a client that keeps one connection: sends each line of its stdin, prints each answer; resets it at the end
LINES = r"""
import socket, struct, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
f = s.makefile("rwb")
print("connected", flush=True)
for line in sys.stdin:
    f.write(line.encode()); f.flush()
    print(f.readline().decode().strip(), flush=True)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # at EOF: close with a reset
f.close(); s.close()
"""


def subnet(i: int) -> str:
    return f"10.210.{i}.0/24"


@dataclass
class Three:
    kit: Kit
    nodes: dict[int, NodeNetwork] = field(default_factory=dict)
    nfts: dict[int, Nft] = field(default_factory=dict)
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def ns(self, short: str) -> str:
        return f"{self.kit.prefix}{short}"

    def tasks(self, serving: set[str] | None = None) -> list[TaskNet]:
        out = []
        for name, (host, addr) in TASKS.items():
            ok = serving is None or name in serving
            out += [TaskNet(svc, f"h{host}", {NODE: addr}, serving=ok) for svc in ("web", "echo")]
        return out

    async def load(self, i: int, serving: set[str] | None = None, direct: bool = True,
                   link: dsr.Link | None = None) -> None:
        """Node ``i``'s mesh as its agent plans it (``serving``: the tasks that serve, all by default;
        ``direct``: with direct server return; ``link``: instead of the one its plumbing found)."""
        node = self.nodes[i]
        mesh = mesh_for(f"h{i}", SERVICES, self.tasks(serving), (subnet(i),), routed=node.routed,
                        dsr=(link or node.dsr) if direct else None)
        await self.nfts[i].apply(mesh)

    def connect(self, host: str, port: int) -> subprocess.Popen[str]:
        p = subprocess.Popen(["ip", "netns", "exec", self.ns("c"), sys.executable, "-c", LINES, host, str(port)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        assert p.stdout is not None and p.stdout.readline().strip() == "connected"
        return p

    def conntrack(self, i: int) -> str:
        return self.kit.run(self.ns(f"h{i}"), "cat", "/proc/net/nf_conntrack", check=False)


def say(p: subprocess.Popen[str], line: str) -> str:
    assert p.stdin is not None and p.stdout is not None
    p.stdin.write(line + "\n")
    p.stdin.flush()
    return p.stdout.readline().strip()


@pytest.fixture
async def three() -> AsyncIterator[Three]:
    kit = Kit()
    t = Three(kit)
    try:
        sw = kit.ns("sw")
        kit.ip(sw, "link add br0 type bridge\nlink set br0 up\n")
        for short, addr in [*((f"h{i}", UNDERLAY[i]) for i in HOSTS), ("c", CLIENT)]:
            kit.ns(short)
            kit.veth(sw, f"p{short}", t.ns(short), "eth0")
            kit.ip(sw, f"link set p{short} master br0\n")
            kit.ip(t.ns(short), f"addr add {addr}/24 dev eth0\n")
        for i in HOSTS:
            node = t.nodes[i] = NodeNetwork(kit.path(t.ns(f"h{i}")), direct_routing=True)
            await node.open()
            peers = tuple((subnet(j), UNDERLAY[j]) for j in HOSTS if j != i)
            await node.ensure(NodeSpec(subnet(i).replace(".0/24", ".1/24"), UNDERLAY[i], peer_subnets=peers))
            t.nfts[i] = Nft(kit.path(t.ns(f"h{i}")))
        for name, (host, addr) in TASKS.items():
            kit.ns(name)
            await t.nodes[host].net.attach_task("shoal0", kit.path(t.ns(name)), task_ifname(name), f"{addr}/24",
                                                gateway=f"10.210.{host}.1")
            kit.serve(t.ns(name), name)
            kit.serve(t.ns(name), name, 9090, ECHO)
        yield t
    finally:
        for p in t.procs:
            p.kill()
            p.wait()
        for node in t.nodes.values():
            await node.close()
        kit.close()


async def test_a_node_without_tasks_forwards_and_the_task_nodes_answer_the_client_straight(three):
    assert three.nodes[1].dsr == dsr.Link("eth0", UNDERLAY[1], tuple((UNDERLAY[j], subnet(j)) for j in (2, 3)))
    for i in HOSTS:
        await three.load(i)
    answers = three.kit.get(three.ns("c"), UNDERLAY[1], PUBLISHED, 90)
    got = labels(answers)
    assert set(got) == {"t2", "t3", "t4"}, f"every task serves: {got}"
    assert got["t3"] + got["t4"] > got["t2"], f"h3 runs two tasks, h2 one: weighted 2:1 ({got})"
    assert clients(answers) == {CLIENT}, "every task sees the client's own address"
    assert f"dport={PUBLISHED}" not in three.conntrack(1), "h1 tracks none of them: it only forwarded"
    assert f"dst={UNDERLAY[1]} sport=" in three.conntrack(3), "h3 tracked and DNATed them"
    pinned = three.kit.run(three.ns("h1"), "nft", "list", "map", "netdev", "shoal-dsr-eth0", "flows")
    assert f"{CLIENT} . " in pinned and f": {dsr.mark_of(UNDERLAY[3])}" in pinned


async def test_the_forwarded_connection_never_crosses_the_receiving_nodes_ip_stack(three):
    for i in HOSTS:
        await three.load(i, serving={"t2"})
    probe = ("table ip probe {\n chain pre { type filter hook prerouting priority -400; policy accept;"
             f" tcp dport {PUBLISHED} counter; }}\n chain post {{ type filter hook postrouting priority 400;"
             f" policy accept; tcp sport {PUBLISHED} counter; }}\n}}\n")
    sh("ip", "netns", "exec", three.ns("h1"), "nft", "-f", "-", stdin=probe)
    assert labels(three.kit.get(three.ns("c"), UNDERLAY[1], PUBLISHED, 5)) == {"t2": 5}
    counters = three.kit.run(three.ns("h1"), "nft", "list", "table", "ip", "probe")
    assert counters.count("counter packets 0 bytes 0") == 2, f"requests nor replies met h1's IP hooks:\n{counters}"


async def test_a_pinned_connection_survives_weight_changes_and_a_reload_from_scratch(three):
    for i in HOSTS:
        await three.load(i)
    conns = [three.connect(UNDERLAY[1], ECHO_PORT) for _ in range(6)]
    first = [say(p, "one").split(":")[0] for p in conns]
    await three.load(1, serving={"t2"})  # weights now all on h2
    three.nfts[1] = Nft(three.kit.path(three.ns("h1")))  # an agent restarted: its first load replaces all
    await three.load(1, serving={"t2"})
    assert [say(p, "two") for p in conns] == [f"{name}: two" for name in first], "each stays on its task"
    assert labels(three.kit.get(three.ns("c"), UNDERLAY[1], PUBLISHED, 6)) == {"t2": 6}, "new ones follow the weights"


async def test_a_task_node_without_serving_tasks_hands_the_connection_to_its_mesh(three):
    await three.load(1, serving={"t2"})  # h1 still sends everything to h2 (weights a moment old)
    await three.load(2, serving={"t3", "t4"})  # while h2's own task has stopped serving
    await three.load(3)
    answers = three.kit.get(three.ns("c"), UNDERLAY[1], PUBLISHED, 6)
    assert set(labels(answers)) <= {"t3", "t4"} and len(answers) == 6 and not any(a.startswith("error") for a in answers)
    assert clients(answers) == {UNDERLAY[2]}, "served through h2's mesh (masqueraded to h2), not bounced back to h1"


async def test_a_connection_from_before_direct_server_return_goes_on_through_the_conntrack_mesh(three):
    for i in HOSTS:
        await three.load(i, direct=False)
    conn = three.connect(UNDERLAY[1], ECHO_PORT)
    name = say(conn, "before").split(":")[0]
    for i in HOSTS:
        await three.load(i)
    assert say(conn, "after") == f"{name}: after", "not pinned: left to h1's conntrack, which still has it"
    assert f"dport={ECHO_PORT}" in three.conntrack(1)


async def test_a_reset_connections_pin_is_shortened_and_cleanup_removes_the_table(three):
    for i in HOSTS:
        await three.load(i, serving={"t2"})
    conn = three.connect(UNDERLAY[1], ECHO_PORT)
    say(conn, "hi")
    flows = ["nft", "list", "map", "netdev", "shoal-dsr-eth0", "flows"]
    assert "expires 14m" in three.kit.run(three.ns("h1"), *flows), "data renewed the pin to the idle timeout"
    assert conn.stdin is not None
    conn.stdin.close()
    conn.wait(5)
    assert "expires 1m" in three.kit.run(three.ns("h1"), *flows), "the RST shortened it (as a FIN does)"
    assert list(await three.nfts[1].netdev_tables()) == ["shoal-dsr-eth0"]
    await three.nfts[1].remove()
    assert await three.nfts[1].netdev_tables() == {} and not await three.nfts[1].exists()


async def test_a_netdev_table_of_another_shape_is_made_again(three):
    h1 = three.ns("h1")
    sh("ip", "netns", "exec", h1, "nft", "-f", "-",
       stdin="table netdev shoal-dsr-eth0 { map flows { type ipv4_addr : ipv4_addr; }; }\n")
    for i in HOSTS:
        await three.load(i, serving={"t2"})
    assert labels(three.kit.get(three.ns("c"), UNDERLAY[1], PUBLISHED, 3)) == {"t2": 3}
    assert "type ipv4_addr . inet_service . inet_service : mark" in three.kit.run(
        h1, "nft", "list", "map", "netdev", "shoal-dsr-eth0", "flows")


async def test_a_connection_that_cannot_be_pinned_goes_through_the_conntrack_mesh(three):
    for i in HOSTS:
        await three.load(i, serving={"t2"})
    keys = ", ".join(f"10.99.{n // 256}.{n % 256} . 1 . 1 : {dsr.mark_of(UNDERLAY[2])}" for n in range(dsr.FLOWS_SIZE))
    sh("ip", "netns", "exec", three.ns("h1"), "nft", "-f", "-",
       stdin=f"add element netdev shoal-dsr-eth0 flows {{ {keys} }}\n")  # full
    answers = three.kit.get(three.ns("c"), UNDERLAY[1], PUBLISHED, 3)
    assert labels(answers) == {"t2": 3} and clients(answers) == {UNDERLAY[1]}, "served, masqueraded by h1's mesh"
    assert f"dport={PUBLISHED}" in three.conntrack(1)


async def test_the_share_of_tasks_no_peer_on_the_link_serves_goes_to_those_tasks_through_the_conntrack_mesh(three):
    for i in HOSTS:
        await three.load(i)
    h2_only = dsr.Link("eth0", UNDERLAY[1], ((UNDERLAY[2], subnet(2)),))  # as if h3 were reached over VXLAN
    await three.load(1, link=h2_only)
    answers = three.kit.get(three.ns("c"), UNDERLAY[1], PUBLISHED, 60)
    got = labels(answers)
    assert set(got) == {"t2", "t3", "t4"} and got["t3"] + got["t4"] > got["t2"], got
    by_task = {name: {a.split()[1] for a in answers if a.startswith(name)} for name in got}
    assert by_task == {"t2": {CLIENT}, "t3": {UNDERLAY[1]}, "t4": {UNDERLAY[1]}}, \
        "t2 by direct server return; h3's share through h1's mesh, masqueraded, and only to h3's tasks"
