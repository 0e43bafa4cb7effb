"""The lab's network plumbing: one network namespace per node host, a veth each, one switch.

The switch is a bridge in a namespace of its own (``switch_netns``), not in the machine's: every node
host's ``eth0`` is a veth whose other end is a port of it, and one more veth (``lab.bridge``, holding
the lab's address) is the machine's only link to the lab. Frames between hosts are switched there
without meeting the machine's netfilter hooks: with br_netfilter in the kernel, a bridge in the
machine's namespace handed every frame it switched to the machine's IP hooks (bridge-nf-call-iptables
is the machine's to set, and shoal leaves the machine's sysctls alone), and a routing-mesh request
crosses the lab's switch twice where a direct one crosses it once (bench/mesh.py --lab). In the switch's
namespace and in each host's, which the lab owns, bridged frames are not handed to the IP hooks
(``bridge-nf-call-iptables`` 0, a machine without br_netfilter): nothing in shoal's rules needs them.

Everything goes through iproute2 in batch mode (one ``ip`` process for the machine's side, one per
namespace), so a lab of five hosts costs a handful of short processes and the commands are the ones
a user would type. Nodes get no default route, so nothing leaves the lab but replies to the machine.
Teardown uses ``-force`` so that each step runs even when an earlier piece is already gone (after a
crash, a second ``down``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess

from shoal.lab.state import Lab, LabError, Node, prefixlen
from shoal.runtime.nsthread import run_in_netns

NETNS_DIR = "/run/netns"
SWITCH_BRIDGE, SWITCH_UPLINK = "br0", "up0"  # inside the switch's namespace
BRIDGE_NF = "net.bridge.bridge-nf-call-iptables"
BRIDGE_NF_FILE = "/proc/sys/" + BRIDGE_NF.replace(".", "/")


def _ip(args: list[str], batch: str = "", check: bool = True) -> str:
    cmd = ["ip", *args] + (["-batch", "-"] if batch else [])
    try:
        res = subprocess.run(cmd, input=batch or None, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise LabError("the `ip` command (iproute2) is not installed; run `make setup`") from None
    if check and res.returncode != 0:
        raise LabError(f"ip {' '.join(args)} failed: {res.stderr.strip() or res.stdout.strip()}")
    return res.stdout


def machine_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the machine's namespace has an address in or a route to (but the default)."""
    nets: list[ipaddress.IPv4Network] = []
    for link in json.loads(_ip(["-j", "-4", "addr"]) or "[]"):
        for a in link.get("addr_info", []):
            nets.append(ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False))
    for r in json.loads(_ip(["-j", "-4", "route", "show", "table", "all"]) or "[]"):
        dst = r.get("dst", "default")
        if dst == "default" or r.get("type") in ("broadcast",):
            continue
        try:
            nets.append(ipaddress.ip_network(dst, strict=False))
        except ValueError:
            continue
    return nets


def link_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def netns_path(node: Node) -> str:
    return f"{NETNS_DIR}/{node.netns}"


def switch_netns(lab: Lab) -> str:
    """The name of the namespace that holds the lab's switch."""
    return f"shoal-{lab.name}-switch"


def _no_bridge_netfilter(netns: str) -> None:
    """Bridged frames in ``netns`` skip the IP hooks (nothing to do where br_netfilter is absent).

    Written by a short-lived thread that enters the namespace (``setns`` is per thread): /proc/sys/net
    shows the namespace of the thread that opens it."""

    def write() -> None:
        try:
            with open(BRIDGE_NF_FILE, "w") as f:
                f.write("0")
        except FileNotFoundError:
            pass

    try:
        target = os.open(f"{NETNS_DIR}/{netns}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            run_in_netns(target, write)
        finally:
            os.close(target)
    except OSError as e:
        raise LabError(f"cannot set {BRIDGE_NF} in {netns}: {e}") from None


def create(lab: Lab) -> None:
    """Namespaces, the switch, veths, node addresses; the machine gets one veth with the lab's address."""
    if link_exists(lab.bridge):
        raise LabError(f"a link named {lab.bridge} already exists (another lab?); choose another --name")
    plen, sw = prefixlen(lab), switch_netns(lab)
    host = [f"netns add {sw}", f"link add {lab.bridge} type veth peer name {SWITCH_UPLINK} netns {sw}",
            f"link set {lab.bridge} alias shoal-lab-{lab.name}", f"addr add {lab.bridge_addr}/{plen} dev {lab.bridge}"]
    switch = [f"link add {SWITCH_BRIDGE} type bridge", f"link set {SWITCH_UPLINK} master {SWITCH_BRIDGE} up"]
    for n in lab.nodes:
        host += [f"netns add {n.netns}", f"link add {n.veth} netns {sw} type veth peer name eth0 netns {n.netns}"]
        switch += [f"link set {n.veth} alias shoal-lab-{lab.name}-{n.name}", f"link set {n.veth} master {SWITCH_BRIDGE} up"]
    _ip([], "\n".join(host) + "\n")
    _ip(["-n", sw], "\n".join([*switch, f"link set {SWITCH_BRIDGE} up", "link set lo up"]) + "\n")
    _ip(["link", "set", lab.bridge, "up"])
    _no_bridge_netfilter(sw)
    for n in lab.nodes:
        _ip(["-n", n.netns], f"link set lo up\naddr add {n.addr}/{plen} dev eth0\nlink set eth0 up\n")
        _no_bridge_netfilter(n.netns)


def set_partitioned(lab: Lab, node: Node, partitioned: bool) -> None:
    """Cut (or restore) a node's link to the lab's switch: its switch-side veth goes down (or up)."""
    _ip(["-n", switch_netns(lab), "link", "set", node.veth, "down" if partitioned else "up"])


def destroy(lab: Lab) -> None:
    """Remove the machine's veth, the namespaces and what is in them; pieces already gone are skipped.

    The machine's veth is deleted first, by name: a namespace's devices go when the kernel gets round
    to cleaning it up, after ``netns del`` has returned. (A lab made before the switch had its own
    namespace had its bridge and the host-side veths here: deleted the same way.)"""
    cmds = [f"link del {x}" for x in [lab.bridge, *(n.veth for n in lab.nodes)] if link_exists(x)]
    cmds += [f"netns del {ns}" for ns in [switch_netns(lab), *(n.netns for n in lab.nodes)]
             if os.path.exists(f"{NETNS_DIR}/{ns}")]
    if cmds:
        _ip(["-force"], "\n".join(cmds) + "\n", check=False)
    left = leftovers(lab)
    if left:
        raise LabError(f"could not remove {', '.join(left)}")


def leftovers(lab: Lab) -> list[str]:
    """What of the lab's network still exists (for `lab ls` and tests): its namespaces (the switch's
    holds the node veths' other ends) and links in the machine's namespace."""
    paths = [f"{NETNS_DIR}/{switch_netns(lab)}", *(netns_path(n) for n in lab.nodes)]
    return [p for p in paths if os.path.exists(p)] + [x for x in [lab.bridge, *(n.veth for n in lab.nodes)]
                                                      if link_exists(x)]
