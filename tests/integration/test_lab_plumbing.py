"""The lab's network plumbing on the real kernel: a namespace per host, a veth each, one switch in a
namespace of its own; partition and heal; teardown that leaves nothing, even run twice.

A lab of this test's own (unique name, a subnet no network of this machine uses); traffic only between
the namespaces it made (a TCP connection from one host to another).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.lab import network, state
from shoal.lab.state import Lab, LabError, Node
from shoal.worker.network.netns import read_sysctl
from tests.timing import wait_until

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates network namespaces and a bridge"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs root tools: iproute2 (ip) is not installed"),
]

PYTHON = os.path.realpath(sys.executable)
SERVE = "import socket\ns=socket.create_server(('0.0.0.0',7777))\nprint('up',flush=True)\nc,a=s.accept()\nc.sendall(a[0].encode())\n"
CONNECT = "import socket,sys\ntry:\n print(socket.create_connection((sys.argv[1],7777),timeout=2).recv(64).decode())\nexcept OSError as e:\n print('error',type(e).__name__)\n"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    subnet = state.choose_subnet(network.machine_networks(), 3)
    lab = state.plan(f"n{uuid.uuid4().hex[:6]}", 1, 2, subnet, tmp_path)
    try:
        yield lab
    finally:
        network.destroy(lab)


def _in(node: Node, *argv: str, **kw: object) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", node.netns, *argv], stdout=subprocess.PIPE, text=True, **kw)  # type: ignore[call-overload]


def reach(src: Node, dst: Node) -> str:
    """What ``src`` gets connecting to ``dst`` on 7777: the address ``dst`` saw, or ``error <name>``."""
    server = _in(dst, PYTHON, "-c", SERVE)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "up"
        out = subprocess.run(["ip", "netns", "exec", src.netns, PYTHON, "-c", CONNECT, dst.addr],
                             capture_output=True, text=True, timeout=30).stdout.strip()
    finally:
        server.kill()
        server.wait()
    return out


def test_hosts_reach_each_other_over_the_bridge_and_the_machine_sees_the_lab_subnet(lab: Lab):
    network.create(lab)
    m, w1, w2 = lab.nodes
    assert reach(w1, m) == w1.addr, "the server saw the client's own lab address"
    assert reach(m, w2) == m.addr
    assert ipaddress.ip_network(lab.subnet) in network.machine_networks()
    switch = f"{network.NETNS_DIR}/{network.switch_netns(lab)}"
    assert set(network.leftovers(lab)) == {*(network.netns_path(n) for n in lab.nodes), switch, lab.bridge}


def test_the_switch_is_not_in_the_machines_namespace_and_bridged_frames_skip_the_ip_hooks(lab: Lab):
    network.create(lab)
    m, w1, _ = lab.nodes
    assert not os.path.exists(f"/sys/class/net/{lab.bridge}/bridge"), "the machine's link to the lab is no bridge"
    assert not any(network.link_exists(n.veth) for n in lab.nodes), "the hosts' veths end in the switch's namespace"
    server = _in(m, PYTHON, "-c", SERVE)
    try:  # the machine (the CLI) reaches a host over its one veth
        assert server.stdout is not None and server.stdout.readline().strip() == "up"
        with socket.create_connection((m.addr, 7777), timeout=5) as c:
            assert c.recv(64).decode() == lab.bridge_addr
    finally:
        server.kill()
        server.wait()
    if not os.path.exists(f"/proc/sys/{network.BRIDGE_NF.replace('.', '/')}"):
        pytest.skip(reason="this kernel has no br_netfilter: no bridge-nf-call-iptables to check")
    machine = read_sysctl(None, network.BRIDGE_NF)
    for ns in [network.switch_netns(lab), m.netns, w1.netns]:
        assert read_sysctl(f"{network.NETNS_DIR}/{ns}", network.BRIDGE_NF) == "0", ns
    assert read_sysctl(None, network.BRIDGE_NF) == machine, "the machine's own setting is left alone"


def test_a_partitioned_host_is_cut_off_until_it_is_healed(lab: Lab):
    network.create(lab)
    m, w1, _ = lab.nodes
    network.set_partitioned(lab, w1, True)
    assert reach(m, w1).startswith("error"), "no traffic reaches a partitioned host"
    network.set_partitioned(lab, w1, False)
    # the link comes up and the neighbour entry the failed tries left is retried: reachable within seconds
    wait_until(lambda: reach(m, w1) == m.addr, 20, "the healed host reachable again")


def test_a_second_lab_on_the_same_bridge_name_is_refused(lab: Lab, tmp_path: Path):
    network.create(lab)
    twin = state.plan(lab.name, 1, 0, ipaddress.ip_network(lab.subnet), tmp_path / "twin")
    with pytest.raises(LabError, match=f"a link named {lab.bridge} already exists"):
        network.create(twin)


def test_teardown_removes_everything_and_can_run_again(lab: Lab):
    network.create(lab)
    network.destroy(lab)
    assert network.leftovers(lab) == []
    assert ipaddress.ip_network(lab.subnet) not in network.machine_networks()
    network.destroy(lab)  # after a crash, a second `lab down`: nothing to do, no error
    assert network.leftovers(lab) == []


def test_teardown_after_a_half_removed_lab_finishes_the_job(lab: Lab):
    network.create(lab)
    subprocess.run(["ip", "netns", "del", lab.nodes[0].netns], check=True)  # a piece already gone
    network.destroy(lab)
    assert network.leftovers(lab) == []
