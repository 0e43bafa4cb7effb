"""Node plumbing on two namespace "hosts" joined by a veth underlay, with task namespaces on each.

``h1`` (192.168.90.1) and ``h2`` (192.168.90.2) are linked by ``eth0``; ``t1`` runs on h1 and ``t2`` on
h2. Each host gets a task bridge and an overlay (VXLAN id 4096) whose bridge holds the host's own
address on the overlay; the tasks talk across the overlay. Every namespace is the test's own.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from shoal.worker.network.links import MARK, PlumbingError
from shoal.worker.network.netns import (
    NetnsError,
    create,
    iproute,
    of_pid,
    read_sysctl,
    remove,
    run_in,
    write_sysctl,
)
from shoal.worker.network.node import NodeNet, task_ifname
from tests.integration.netkit import ECHO, Kit, labels, needs_root, sh

pytestmark = needs_root

UNDERLAY = {1: "192.168.90.1", 2: "192.168.90.2"}
OVERLAY_NODE = {1: "10.220.0.251/24", 2: "10.220.0.252/24"}
OVERLAY_TASK = {1: "10.220.0.2/24", 2: "10.220.0.3/24"}
TASK_NET = {1: "10.210.1.0/24", 2: "10.210.2.0/24"}


@dataclass
class Hosts:
    kit: Kit
    nets: dict[int, NodeNet]

    def host(self, i: int) -> str:
        return f"{self.kit.prefix}h{i}"

    def task(self, i: int) -> str:
        return f"{self.kit.prefix}t{i}"

    def path(self, name: str) -> str:
        return self.kit.path(name)


@pytest.fixture
async def hosts() -> AsyncIterator[Hosts]:
    kit = Kit()
    nets: dict[int, NodeNet] = {}
    try:
        kit.ns("h1"), kit.ns("h2"), kit.ns("t1"), kit.ns("t2")
        kit.veth(f"{kit.prefix}h1", "eth0", f"{kit.prefix}h2", "eth0")
        for i, addr in UNDERLAY.items():
            kit.ip(f"{kit.prefix}h{i}", f"addr add {addr}/24 dev eth0\n")
            nets[i] = NodeNet(kit.path(f"{kit.prefix}h{i}"))
            await nets[i].open()
        yield Hosts(kit, nets)
    finally:
        for net in nets.values():
            await net.close()
        kit.close()


async def wire(h: Hosts, i: int, net: NodeNet | None = None) -> None:
    """Everything host ``i`` needs for its task ``t<i>``: task bridge, overlay, both interfaces."""
    net = net or h.nets[i]
    gw = TASK_NET[i].replace(".0/24", ".1/24")
    await net.ensure_bridge("shoal0", gw)
    await net.attach_task("shoal0", h.path(h.task(i)), task_ifname(f"t{i}"), TASK_NET[i].replace(".0/24", ".2/24"),
                          gateway=gw.split("/")[0])
    await net.ensure_bridge("shob4096", OVERLAY_NODE[i], mtu=1450)
    await net.ensure_vxlan("shvx4096", 4096, "shob4096", local=UNDERLAY[i], dev="eth0", mtu=1450)
    await net.set_peers("shvx4096", [UNDERLAY[3 - i]])
    await net.attach_task("shob4096", h.path(h.task(i)), task_ifname(f"t{i}", "web"), OVERLAY_TASK[i],
                          ifname="eth1", mtu=1450)


def connect_from(h: Hosts, ns: str, ip: str, port: int, timeout: float = 3.0) -> socket.socket:
    """A TCP connection opened inside namespace ``ns`` (the socket stays there) and used from the test."""
    return run_in(h.path(ns), lambda: socket.create_connection((ip, port), timeout=timeout))


def echo(sock: socket.socket, line: str) -> str:
    sock.sendall(f"{line}\n".encode())
    return sock.recv(100).decode().strip()


async def test_a_task_reaches_its_node_through_the_bridge(hosts):
    await wire(hosts, 1)
    hosts.kit.serve(hosts.task(1), "t1")
    assert hosts.kit.get(hosts.host(1), "10.210.1.2", 8080, 2) == ["t1 10.210.1.1", "t1 10.210.1.1"]
    assert hosts.kit.run(hosts.task(1), "ip", "-4", "route", "show", "default").startswith("default via 10.210.1.1")


async def test_tasks_on_two_hosts_talk_over_the_vxlan_overlay(hosts):
    await wire(hosts, 1)
    await wire(hosts, 2)
    hosts.kit.serve(hosts.task(2), "t2")
    answers = hosts.kit.get(hosts.task(1), "10.220.0.3", 8080, 5)
    assert answers == ["t2 10.220.0.2"] * 5  # the caller's own overlay address: no NAT on the overlay
    mtu = hosts.kit.run(hosts.task(1), "cat", "/sys/class/net/eth1/mtu").strip()
    assert mtu == "1450"


async def test_rewiring_after_an_agent_restart_keeps_a_live_connection(hosts):
    await wire(hosts, 1)
    await wire(hosts, 2)
    hosts.kit.serve(hosts.task(2), "t2", port=9000, script=ECHO)
    before = hosts.kit.run(hosts.host(1), "ip", "-o", "link", "show", task_ifname("t1", "web"))
    with connect_from(hosts, hosts.task(1), "10.220.0.3", 9000) as conn:
        assert echo(conn, "one") == "t2: one"
        fresh = NodeNet(hosts.path(hosts.host(1)))  # what a restarted agent opens
        await fresh.open()
        try:
            await wire(hosts, 1, fresh)
        finally:
            await fresh.close()
        assert echo(conn, "two") == "t2: two"
    after = hosts.kit.run(hosts.host(1), "ip", "-o", "link", "show", task_ifname("t1", "web"))
    assert before.split(":")[0] == after.split(":")[0]  # same interface index: nothing was recreated


async def test_overlay_traffic_follows_the_peer_list(hosts):
    await wire(hosts, 1)
    await wire(hosts, 2)
    hosts.kit.serve(hosts.task(2), "t2")
    assert await hosts.nets[1].peers("shvx4096") == {"192.168.90.2"}
    assert await hosts.nets[1].set_peers("shvx4096", ["192.168.90.2", "192.168.90.9"]) == ({"192.168.90.9"}, set())
    assert await hosts.nets[1].set_peers("shvx4096", ["192.168.90.9"]) == (set(), {"192.168.90.2"})
    for i in (1, 2):  # forget what was learnt, so only the flood list can carry traffic
        hosts.kit.run(hosts.host(i), "bridge", "fdb", "flush", "dev", "shvx4096", "dynamic", check=False)
        hosts.kit.run(hosts.task(i), "ip", "neigh", "flush", "dev", "eth1")
    hosts.kit.run(hosts.host(1), "ip", "neigh", "flush", "dev", "shob4096")
    assert hosts.kit.get(hosts.task(1), "10.220.0.3", 8080, 1)[0].startswith("error")  # no peer to flood to
    await hosts.nets[1].set_peers("shvx4096", ["192.168.90.2"])
    # the failed attempt left task 1's neighbour entry FAILED; the kernel may refuse one more connection
    # before it probes again, so wait (bounded) for the first answer, then every answer must come from t2
    deadline = time.monotonic() + 10
    while hosts.kit.get(hosts.task(1), "10.220.0.3", 8080, 1)[0].startswith("error"):
        assert time.monotonic() < deadline, "no answer over the restored peer within 10 s"
    assert labels(hosts.kit.get(hosts.task(1), "10.220.0.3", 8080, 3)) == {"t2": 3}


async def test_cleanup_removes_exactly_what_shoal_added(hosts):
    await wire(hosts, 1)
    h1 = hosts.host(1)
    hosts.kit.ip(h1, "link add keepme type bridge\nlink set keepme alias shoal-lab-x\n")
    removed = await hosts.nets[1].cleanup()
    assert set(removed) == {"shoal0", "shob4096", "shvx4096", task_ifname("t1"), task_ifname("t1", "web")}
    assert await hosts.nets[1].leftovers() == []
    names = hosts.kit.run(h1, "ls", "/sys/class/net").split()
    assert sorted(names) == ["eth0", "keepme", "lo"]
    assert hosts.kit.run(hosts.task(1), "ls", "/sys/class/net").split() == ["lo"]  # the task ends went too
    assert await hosts.nets[1].cleanup() == []  # twice is fine


async def test_wiring_twice_changes_nothing(hosts):
    await wire(hosts, 1)

    def snapshot() -> list[str]:
        return [hosts.kit.run(ns, "ip", "-4", "-o", *what) for ns in (hosts.host(1), hosts.task(1))
                for what in (["addr"], ["route"], ["link"])]

    async def settled() -> list[str]:
        # A veth's carrier and operstate follow its peer asynchronously (the kernel's linkwatch, up to
        # a second behind on a loaded machine): CI once took the first snapshot while the task side's
        # overlay veth still showed NO-CARRIER. Kernel link state, not wiring: wait for it to settle.
        deadline = time.monotonic() + 5
        while "NO-CARRIER" in "".join(snap := snapshot()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return snap

    before = await settled()
    await wire(hosts, 1)
    assert await settled() == before
    aliases = hosts.kit.run(hosts.host(1), "ip", "-o", "link").count(f"alias {MARK}")
    assert aliases == 5


async def test_detach_removes_the_pair(hosts):
    await wire(hosts, 1)
    assert await hosts.nets[1].detach_task(task_ifname("t1", "web")) is True
    assert await hosts.nets[1].detach_task(task_ifname("t1", "web")) is False
    assert "eth1" not in hosts.kit.run(hosts.task(1), "ls", "/sys/class/net").split()


async def test_a_half_pair_is_replaced_and_a_foreign_interface_refused(hosts):
    await hosts.nets[1].ensure_bridge("shoal0", "10.210.1.1/24")
    stale = task_ifname("t1")
    hosts.kit.ip(hosts.host(1), f"link add {stale} type veth peer name straypeer\n")
    await hosts.nets[1].attach_task("shoal0", hosts.path(hosts.task(1)), stale, "10.210.1.2/24", gateway="10.210.1.1")
    assert "straypeer" not in hosts.kit.run(hosts.host(1), "ls", "/sys/class/net").split()
    hosts.kit.ip(hosts.task(1), "link add eth5 type bridge\n")
    with pytest.raises(PlumbingError, match="already has an interface called eth5"):
        await hosts.nets[1].attach_task("shoal0", hosts.path(hosts.task(1)), "shvother", "10.210.1.3/24", ifname="eth5")


async def test_bad_requests_are_one_clear_error(hosts):
    net = hosts.nets[1]
    with pytest.raises(PlumbingError, match="eth0 exists and is not a bridge"):
        await net.ensure_bridge("eth0")
    with pytest.raises(PlumbingError, match="bridge nobr does not exist"):
        await net.attach_task("nobr", hosts.path(hosts.task(1)), "shvx", "10.0.0.2/24")
    with pytest.raises(PlumbingError, match="VXLAN device novx does not exist"):
        await net.set_peers("novx", [])
    await net.ensure_bridge("shob1", None)
    with pytest.raises(PlumbingError, match="uplink nodev for VXLAN"):
        await net.ensure_vxlan("shvx1", 1, "shob1", dev="nodev")
    await net.ensure_vxlan("shvx1", 1, "shob1")
    with pytest.raises(PlumbingError, match="VXLAN peers of shvx1: .*'not-an-ip'"):
        await net.set_peers("shvx1", ["not-an-ip"])


async def test_a_vxlan_with_another_id_is_recreated(hosts):
    net = hosts.nets[1]
    await net.ensure_bridge("shob1")
    first = await net.ensure_vxlan("shvx1", 5000, "shob1", local=UNDERLAY[1])
    assert await net.ensure_vxlan("shvx1", 5000, "shob1", local=UNDERLAY[1]) == first
    await net.ensure_vxlan("shvx1", 5001, "shob1", local=UNDERLAY[1])
    assert "vxlan id 5001" in hosts.kit.run(hosts.host(1), "ip", "-d", "link", "show", "shvx1")


async def test_forwarding_and_sysctls_stay_in_the_nodes_namespace(hosts):
    machine = read_sysctl(None, "net.ipv4.ip_forward")
    # a new namespace copies the machine's IPv4 settings (devconf_inherit_init_net=0), and a node run on this
    # machine earlier (the e2e tests) turns forwarding on there: start both hosts from a known "0"
    for h in (1, 2):
        write_sysctl(hosts.path(hosts.host(h)), "net.ipv4.ip_forward", "0")
    hosts.nets[1].enable_forwarding()
    assert read_sysctl(hosts.path(hosts.host(1)), "net.ipv4.ip_forward") == "1"
    assert read_sysctl(hosts.path(hosts.host(2)), "net.ipv4.ip_forward") == "0"
    assert read_sysctl(None, "net.ipv4.ip_forward") == machine
    write_sysctl(hosts.path(hosts.host(2)), "net.ipv4.ip_forward", "1")
    assert read_sysctl(hosts.path(hosts.host(2)), "net.ipv4.ip_forward") == "1"


async def test_entering_a_missing_namespace_fails_clearly():
    with pytest.raises(NetnsError) as e:
        run_in("/run/netns/shoal-no-such-ns", lambda: None)
    assert e.value.errno == errno.ENOENT and "/run/netns/shoal-no-such-ns" in str(e.value)
    assert of_pid(42) == "/proc/42/ns/net"


async def test_a_namespace_socket_sees_only_that_namespace(hosts):
    hosts.kit.ip(hosts.task(1), "link add onlyhere type bridge\n")
    async with iproute(hosts.path(hosts.task(1))) as ipr:
        names = [m.get("IFLA_IFNAME") async for m in await ipr.link("dump")]
    assert sorted(names) == ["lo", "onlyhere"]
    assert "onlyhere" not in sh("ls", "/sys/class/net").split()


def test_task_interface_names_fit_the_kernel_limit():
    names = {task_ifname(f"task{i}", net) for i in range(200) for net in ("", "web")}
    assert len(names) == 400 and all(len(n) <= 15 and n.startswith("shv") for n in names)


async def test_a_named_namespace_is_made_without_forking_wired_and_removed(hosts, tmp_path):
    path = str(tmp_path / "netns" / "task-x")
    create(path)
    try:
        with pytest.raises(FileExistsError):
            create(path)
        assert os.stat(path).st_ino != os.stat("/proc/self/ns/net").st_ino  # a namespace of its own
        assert os.stat("/proc/self/ns/net").st_ino == os.stat("/proc/thread-self/ns/net").st_ino  # we are back
        net = hosts.nets[1]
        await net.ensure_bridge("shoal0", "10.210.1.1/24")
        await net.attach_task("shoal0", path, task_ifname("x"), "10.210.1.7/24", gateway="10.210.1.1")
        async with iproute(path) as ipr:
            names = sorted([m.get("IFLA_IFNAME") async for m in await ipr.link("dump")])
        assert names == ["eth0", "lo"]
        hosts.kit.run(hosts.host(1), "busybox", "ping", "-c", "1", "-W", "2", "10.210.1.7")
    finally:
        assert remove(path) is True
    assert not os.path.exists(path) and remove(path) is False
    await asyncio.sleep(0.2)  # the veth goes with the namespace, asynchronously
    assert task_ifname("x") not in hosts.kit.run(hosts.host(1), "ls", "/sys/class/net").split()
