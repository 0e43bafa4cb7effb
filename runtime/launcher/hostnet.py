"""Standalone containers with published ports (``shoal run -p``), as docker's default bridge does it.

A container that publishes ports gets, when it starts, its own named network namespace
(``/run/netns/shoalrun-<id>``) with ``eth0`` on shoal's standalone bridge ``shoalrun0`` (10.209.0.1/24,
addresses handed out lowest first among the containers that hold one) and a default route through
it. Each published port is forwarded to it by ``table ip shoal-run`` (shoal's own table, apart from
the cluster mesh's ``ip shoal``): a DNAT for traffic to any of this host's addresses (or the one
given, ``IP:HOST:CONTAINER``), from outside (prerouting) and from the host itself (output; loopback
sources are masqueraded, which needs ``route_localnet`` on the bridge). The table is written whole
from the running containers on every change, in one ``nft -f`` transaction.

When the container exits (or is deleted, or found dead after a launcher restart) its namespace,
with the veth, and its forwards go; with the last one the bridge and the table go too, and the
host's ``ip_forward`` is put back as it was. A host port another running container publishes, that
a service of this node publishes (``ip shoal``), or that a process of this host listens on, is
refused at start with a message naming the holder. Runs inside the launcher: plain subprocesses of
``ip`` and ``nft``, no asyncio.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import ipaddress
import os
import socket
import subprocess
from collections.abc import Iterable
from typing import Any

from shoal.runtime.errors import StartError
from shoal.runtime.ports import describe

BRIDGE = "shoalrun0"
SUBNET = ipaddress.IPv4Network("10.209.0.0/24")
GATEWAY = SUBNET.network_address + 1
# the bridge's own MAC (locally administered, the gateway's 4 bytes): left to the kernel, a bridge takes the
# lowest MAC of its ports, so it changed as containers came and went and the others' ARP entry for their
# gateway went wrong: their replies were dropped until it expired (up to a minute)
BRIDGE_MAC = ":".join(f"{b:02x}" for b in (0x02, 0x53, *GATEWAY.packed))
TABLE = "shoal-run"
ALIAS = "shoal-run"
NETNS_DIR = "/run/netns"


def netns_name(cid: str) -> str:
    return f"shoalrun-{cid[:40]}"


def veth_name(cid: str) -> str:
    return "sr" + hashlib.sha256(cid.encode()).hexdigest()[:10]


def _run(argv: list[str], stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(argv, input=stdin, text=True, capture_output=True)
    if check and res.returncode != 0:
        raise StartError(f"{' '.join(argv[:3])} failed: {res.stderr.strip() or res.stdout.strip()}")
    return res


def table_text(published: Iterable[tuple[str, list[dict[str, Any]]]]) -> str:
    """The whole ``table ip shoal-run`` for (container address, its port entries) pairs. Pure."""
    anywhere, on_ip = [], []
    for address, entries in published:
        for e in entries:
            target = f"{address} . {e['container_port']}"
            if e["host_ip"]:
                on_ip.append(f"{e['host_ip']} . {e['protocol']} . {e['host_port']} : {target}")
            else:
                anywhere.append(f"{e['protocol']} . {e['host_port']} : {target}")
    lines = [f"table ip {TABLE} {{",
             "\tmap ports {", "\t\ttype inet_proto . inet_service : ipv4_addr . inet_service"]
    if anywhere:
        lines.append(f"\t\telements = {{ {', '.join(sorted(anywhere))} }}")
    lines += ["\t}", "\tmap ports-on {", "\t\ttype ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service"]
    if on_ip:
        lines.append(f"\t\telements = {{ {', '.join(sorted(on_ip))} }}")
    lines.append("\t}")
    rules = ["fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @ports-on",
             "fib daddr type local dnat ip to meta l4proto . th dport map @ports"]
    for hook in ("prerouting", "output"):
        lines += [f"\tchain {hook} {{", f"\t\ttype nat hook {hook} priority -100; policy accept;",
                  *(f"\t\t{r}" for r in rules), "\t}"]
    lines += ["\tchain postrouting {", "\t\ttype nat hook postrouting priority 100; policy accept;",
              f'\t\tip saddr 127.0.0.0/8 oifname "{BRIDGE}" masquerade', "\t}", "}", ""]
    return f"add table ip {TABLE}\ndelete table ip {TABLE}\n" + "\n".join(lines)


def next_address(taken: Iterable[str]) -> str:
    """The lowest free container address on the bridge."""
    used = set(taken)
    for host in SUBNET.hosts():
        if host != GATEWAY and str(host) not in used:
            return str(host)
    raise StartError(f"no free address left on {BRIDGE} ({SUBNET}): too many containers publish ports")


def overlaps(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two port entries claim the same host port (an unbound address claims every address)."""
    same_port = (a["protocol"], a["host_port"]) == (b["protocol"], b["host_port"])
    return same_port and (not a["host_ip"] or not b["host_ip"] or a["host_ip"] == b["host_ip"])


def _in_use(entry: dict[str, Any]) -> bool:
    """Whether a process of this host holds the port (a test bind, released at once)."""
    kind = socket.SOCK_STREAM if entry["protocol"] == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT is no holder; a listener still is
        try:
            s.bind((entry["host_ip"] or "0.0.0.0", entry["host_port"]))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _service_ports() -> str:
    """The cluster mesh's published ports on this node (``ip shoal``), as nft lists them ("" without it)."""
    return _run(["nft", "list", "map", "ip", "shoal", "published"], check=False).stdout


class HostNet:
    """The standalone bridge, namespaces and forwards of one launcher (see the module docstring)."""

    def __init__(self, state_root: str) -> None:
        self.forward_file = os.path.join(state_root, "hostnet-ip_forward")

    def check(self, entries: list[dict[str, Any]], others: Iterable[tuple[str, list[dict[str, Any]]]]) -> None:
        """Refuse ports another running container, a service or a host process holds."""
        held = list(others)
        mesh = _service_ports() if entries else ""
        for e in entries:
            for name, theirs in held:
                if any(overlaps(e, t) for t in theirs):
                    raise StartError(f"Bind for {describe(e).split('->')[0]} failed: port is already allocated "
                                     f"(by container {name})")
            if f"{e['protocol']} . {e['host_port']} :" in mesh:
                raise StartError(f"port {e['host_port']}/{e['protocol']} is published by a service on this node")
            if _in_use(e):
                raise StartError(f"Bind for {describe(e).split('->')[0]} failed: the port is in use on this host")

    def _ensure_bridge(self) -> None:
        if _run(["ip", "link", "show", BRIDGE], check=False).returncode != 0:
            _run(["ip", "-batch", "-"], f"link add {BRIDGE} address {BRIDGE_MAC} type bridge\n"
                 f"link set {BRIDGE} alias {ALIAS}\n"
                 f"addr add {GATEWAY}/{SUBNET.prefixlen} dev {BRIDGE}\nlink set {BRIDGE} up\n")
        with open(f"/proc/sys/net/ipv4/conf/{BRIDGE}/route_localnet", "w") as f:
            f.write("1")
        if not os.path.exists(self.forward_file):  # the value before the first container: put back at the end
            with open("/proc/sys/net/ipv4/ip_forward") as f:
                before = f.read().strip()
            with open(self.forward_file, "w") as f:
                f.write(before)
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write("1")

    def attach(self, cid: str, address: str) -> str:
        """The container's namespace, wired to the bridge with ``address``; returns its path."""
        self._ensure_bridge()
        name, veth = netns_name(cid), veth_name(cid)
        self._remove_netns(name)
        _run(["ip", "netns", "add", name])
        try:
            _run(["ip", "-batch", "-"], f"link add {veth} type veth peer name eth0 netns {name}\n"
                 f"link set {veth} alias {ALIAS}\nlink set {veth} master {BRIDGE} up\n")
            _run(["ip", "-n", name, "-batch", "-"], f"link set lo up\naddr add {address}/{SUBNET.prefixlen} dev eth0\n"
                 f"link set eth0 up\nroute add default via {GATEWAY}\n")
        except StartError:
            self._remove_netns(name)
            raise
        return f"{NETNS_DIR}/{name}"

    def sync(self, published: list[tuple[str, list[dict[str, Any]]]]) -> None:
        """Forward exactly ``published`` (address, entries); with nothing left, remove the bridge and table."""
        if published:
            _run(["nft", "-f", "-"], table_text(published))
            return
        _run(["nft", "-f", "-"], f"add table ip {TABLE}\ndelete table ip {TABLE}\n", check=False)
        if _run(["ip", "link", "show", BRIDGE], check=False).returncode == 0:
            _run(["ip", "link", "del", BRIDGE], check=False)
        with contextlib.suppress(FileNotFoundError):
            with open(self.forward_file) as f:
                before = f.read().strip()
            with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
                f.write(before)
            os.unlink(self.forward_file)

    def detach(self, cid: str) -> None:
        """Remove the container's namespace (its veth goes with it); harmless when it is gone."""
        self._remove_netns(netns_name(cid))

    @staticmethod
    def _remove_netns(name: str) -> None:
        if os.path.exists(f"{NETNS_DIR}/{name}"):
            _run(["ip", "netns", "del", name], check=False)
