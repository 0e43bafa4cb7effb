"""The lab's network plumbing: one network namespace per node host, a veth each, one bridge.

Everything goes through iproute2 in batch mode (one ``ip`` process for the machine's side, one per
namespace), so a lab of five hosts costs a handful of short processes and the commands are the ones
a user would type. Only the bridge and its address live in the machine's namespace; nodes get no
default route, so nothing leaves the lab but replies to the machine. Teardown uses ``-force`` so
that each step runs even when an earlier piece is already gone (after a crash, a second ``down``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess

from shoal.lab.state import Lab, LabError, Node, prefixlen

NETNS_DIR = "/run/netns"


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


def create(lab: Lab) -> None:
    """Namespaces, bridge (with the lab's one address on the machine), veths, node addresses."""
    if link_exists(lab.bridge):
        raise LabError(f"a link named {lab.bridge} already exists (another lab?); choose another --name")
    plen = prefixlen(lab)
    host = [f"link add {lab.bridge} type bridge", f"link set {lab.bridge} alias shoal-lab-{lab.name}"]
    host += [f"addr add {lab.bridge_addr}/{plen} dev {lab.bridge}", f"link set {lab.bridge} up"]
    for n in lab.nodes:
        host += [
            f"netns add {n.netns}",
            f"link add {n.veth} type veth peer name eth0 netns {n.netns}",
            f"link set {n.veth} alias shoal-lab-{lab.name}-{n.name}",
            f"link set {n.veth} master {lab.bridge} up",
        ]
    _ip([], "\n".join(host) + "\n")
    for n in lab.nodes:
        _ip(["-n", n.netns], f"link set lo up\naddr add {n.addr}/{plen} dev eth0\nlink set eth0 up\n")


def set_partitioned(node: Node, partitioned: bool) -> None:
    """Cut (or restore) a node's link to the lab bridge: its host-side veth goes down (or up)."""
    _ip(["link", "set", node.veth, "down" if partitioned else "up"])


def destroy(lab: Lab) -> None:
    """Remove namespaces, veths and the bridge; pieces already gone are skipped."""
    cmds = [f"netns del {n.netns}" for n in lab.nodes if os.path.exists(netns_path(n))]
    cmds += [f"link del {n.veth}" for n in lab.nodes if link_exists(n.veth)]
    if link_exists(lab.bridge):
        cmds.append(f"link del {lab.bridge}")
    if cmds:
        _ip(["-force"], "\n".join(cmds) + "\n", check=False)
    left = [n.netns for n in lab.nodes if os.path.exists(netns_path(n))]
    left += [x for x in [lab.bridge, *(n.veth for n in lab.nodes)] if link_exists(x)]
    if left:
        raise LabError(f"could not remove {', '.join(left)}")


def leftovers(lab: Lab) -> list[str]:
    """What of the lab's network still exists (for `lab ls` and tests)."""
    out = [netns_path(n) for n in lab.nodes if os.path.exists(netns_path(n))]
    return out + [x for x in [lab.bridge, *(n.veth for n in lab.nodes)] if link_exists(x)]
