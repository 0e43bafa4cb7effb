#!/usr/bin/env python3
"""Routing mesh throughput and latency versus going straight to the task, side by side in one run.

    flock /work/wt/bench.lock nice -n -5 .venv/bin/python bench/mesh.py [-c 32] [-d 3] [-r 5] [--tool auto|wrk|python] [--lab]

With ``--lab`` it measures a real lab cluster driven through the CLI, with the endpoint convergence
time (task RUNNING -> first answer through its VIP and through a published port): see mesh_lab.py.
Without it, it builds the topology from the building blocks themselves: two namespace hosts ``h1`` and
``h2`` and a load generator ``lg`` on a switch namespace, an overlay (VXLAN) between the hosts planned
by ``Ipam`` and wired by ``NodeNet``, the rules loaded by ``Nft``. One task on h2 runs a keep-alive HTTP
server. Measured from lg, same client, connections and duration, in interleaved rounds (``_rounds``:
every path once per round, rotated order; medians, and the median of the per-round ratios to direct):

* direct: to the task's address (lg routes the task subnet via h2: one forwarding hop);
* mesh, local: h2's published port (the task runs there: one hop plus DNAT, client address kept);
* mesh: h1's published port (h1 runs no task: DNAT, masquerade, routed to h2: the routing mesh between
  two nodes on one link, which routes each other's task subnet, see worker/network/routes.py);
* mesh_vxlan: h1's port PORT + 1, the same over the ingress overlay (VXLAN to h2), as between nodes that
  are not on one link.

Also the time from loading a mesh that gains the endpoint to the first request served through it.
Last line: ``direct_rps=... mesh_rps=... ratio=... direct_p99_ms=... mesh_p99_ms=...`` (mesh = via h1, routed),
then the other ratios and the convergence time. The client (wrk, or the Python one) is printed first.
Needs root; everything lives in namespaces made here and removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _httpload import SERVER  # noqa: E402
from _rounds import client_line, interleaved, print_rounds, print_table, summary  # noqa: E402

from shoal.manager.ipam import Ipam  # noqa: E402
from shoal.worker.network import routes  # noqa: E402
from shoal.worker.network.netns import run_in, write_sysctl  # noqa: E402
from shoal.worker.network.nft import Endpoint, Frontend, Mesh  # noqa: E402
from shoal.worker.network.nftapply import Nft  # noqa: E402
from shoal.worker.network.node import NodeNet, task_ifname  # noqa: E402

UNDERLAY = {"h1": "192.168.93.1", "h2": "192.168.93.2", "lg": "192.168.93.9"}
PORT, TARGET = 30080, 8080


def ip(*args: str, stdin: str | None = None) -> None:
    subprocess.run(["ip", *args], input=stdin, text=True, check=True, capture_output=True)


class Lab:
    """The namespaces of one run; ``close`` removes them and the processes started in them."""

    def __init__(self) -> None:
        self.prefix = f"shb{uuid.uuid4().hex[:5]}"
        self.names: list[str] = []
        self.procs: list[subprocess.Popen[str]] = []
        self.ipam = Ipam.create()
        self.ipam.create_network("ingress", "10.255.0.0/24")
        self.nets: dict[str, NodeNet] = {}

    def ns(self, short: str) -> str:
        return f"{self.prefix}{short}"

    def path(self, short: str) -> str:
        return f"/run/netns/{self.ns(short)}"

    def add(self, short: str) -> None:
        ip("netns", "add", self.ns(short))
        self.names.append(self.ns(short))
        ip("-n", self.ns(short), "link", "set", "lo", "up")
        with contextlib.suppress(FileNotFoundError):  # as a lab's switch and hosts: see shoal.lab.network
            write_sysctl(self.path(short), "net.bridge.bridge-nf-call-iptables", "0")

    def underlay(self) -> None:
        for short in ("sw", *UNDERLAY, "t2"):
            self.add(short)
        ip("-n", self.ns("sw"), "-batch", "-", stdin="link add br0 type bridge\nlink set br0 up\n")
        for short, addr in UNDERLAY.items():
            ip("link", "add", f"{self.prefix}a", "netns", self.ns("sw"), "type", "veth", "peer", "name",
               f"{self.prefix}b", "netns", self.ns(short))
            ip("-n", self.ns("sw"), "-batch", "-", stdin=f"link set {self.prefix}a name p{short}\n"
               f"link set p{short} master br0 up\n")
            ip("-n", self.ns(short), "-batch", "-", stdin=f"link set {self.prefix}b name eth0\nlink set eth0 up\n"
               f"addr add {addr}/24 dev eth0\n")

    async def plumb(self, host: str) -> None:
        net = self.nets[host] = NodeNet(self.path(host))
        await net.open()
        net.enable_forwarding()
        node = self.ipam.node_subnet(host)
        await net.ensure_bridge("shoal0", f"{node.gateway}/{node.subnet.prefixlen}")
        ingress = self.ipam.network("ingress")
        bridge, vxlan = f"shob{ingress.vxlan_id}", f"shvx{ingress.vxlan_id}"
        await net.ensure_bridge(bridge, self.ipam.node_address("ingress", host), mtu=1450)
        await net.ensure_vxlan(vxlan, ingress.vxlan_id, bridge, local=UNDERLAY[host], dev="eth0", mtu=1450)
        await net.set_peers(vxlan, [a for h, a in UNDERLAY.items() if h not in (host, "lg")])
        others = [(str(self.ipam.node_subnet(h).subnet), a) for h, a in UNDERLAY.items() if h not in (host, "lg")]
        assert await routes.ensure(net.ipr, others) == {s for s, _ in others}, "the hosts share a link"
        if host == "h2":
            await net.attach_task("shoal0", self.path("t2"), task_ifname("t2"), self.ipam.task_address("h2", "t2"),
                                  gateway=node.gateway)
            await net.attach_task(bridge, self.path("t2"), task_ifname("t2", "ingress"),
                                  self.ipam.network_address("ingress", "t2"), ifname="eth1", mtu=1450)

    def mesh(self, host: str, with_task: bool = True) -> Mesh:
        """The published port on ``host``: to the task's bridge address on h2, routed from h1 (and on
        PORT + 1 from h1: over the ingress overlay)."""
        bridge = str(self.ipam.task_address("h2", "t2").ip)
        overlay = (Frontend("web-vxlan", PORT + 1, (Endpoint(str(self.ipam.network_address("ingress", "t2").ip),
                                                            TARGET, False),)),)
        if not with_task:
            fes: tuple[Frontend, ...] = (Frontend("web", PORT, ()),)
        elif host == "h2":
            fes = (Frontend("web", PORT, (Endpoint(bridge, TARGET, True),)),)
        else:
            fes = (Frontend("web", PORT, (Endpoint(bridge, TARGET, False),)), *overlay)
        subnets = (str(self.ipam.node_subnet(host).subnet), str(self.ipam.network("ingress").subnet))
        routed = tuple(str(self.ipam.node_subnet(h).subnet) for h in ("h1", "h2") if h != host)
        return Mesh(fes, subnets, routed_subnets=routed)

    def serve(self) -> None:
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns("t2"), sys.executable, "-c", SERVER, "t2", str(TARGET)],
                                stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

    async def close(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
        for net in self.nets.values():
            await net.close()
        for name in self.names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def first_served_ms(lab: Lab, host: str, started: float, timeout: float = 5.0) -> float:
    """Poll from lg until ``host``'s published port answers; ms since ``started``."""
    while time.perf_counter() - started < timeout:
        try:
            s = run_in(lab.path("lg"), lambda: socket.create_connection((UNDERLAY[host], PORT), timeout=0.2))
            s.close()
            return 1000 * (time.perf_counter() - started)
        except OSError:
            time.sleep(0.002)
    return float("nan")


def key_figures(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """The issue's figures, in its order: medians of direct and mesh, and the median per-round ratio."""
    return {"direct_rps": results["direct"]["rps"], "mesh_rps": results["mesh"]["rps"],
            "ratio": results["mesh"]["ratio"], "direct_p99_ms": results["direct"]["p99_ms"],
            "mesh_p99_ms": results["mesh"]["p99_ms"], "cpu_ratio": results["mesh"]["cpu_ratio"],
            "busiest_cpu_ratio": results["mesh"]["busiest_cpu_ratio"]}


async def run(conns: int, secs: float, tool: str, rounds: int) -> dict[str, float]:
    lab = Lab()
    try:
        lab.underlay()
        await lab.plumb("h1")
        await lab.plumb("h2")
        ip("-n", lab.ns("lg"), "route", "add", str(lab.ipam.node_subnet("h2").subnet), "via", UNDERLAY["h2"])
        lab.serve()
        nfts = {h: Nft(lab.path(h)) for h in ("h1", "h2")}
        await nfts["h1"].apply(lab.mesh("h1", with_task=False))
        started = time.perf_counter()
        await nfts["h1"].apply(lab.mesh("h1"))
        converge = first_served_ms(lab, "h1", started)
        await nfts["h2"].apply(lab.mesh("h2"))
        task = str(lab.ipam.task_address("h2", "t2").ip)
        paths = [("direct", task, TARGET), ("mesh_local", UNDERLAY["h2"], PORT), ("mesh", UNDERLAY["h1"], PORT),
                 ("mesh_vxlan", UNDERLAY["h1"], PORT + 1)]
        runs = interleaved(lab.ns("lg"), paths, conns, secs, tool, rounds)
        results = summary(runs)
        print(client_line(runs, conns, secs, rounds) + f"; load average {os.getloadavg()[0]:.1f}\n")
        print_rounds(runs)
        print_table(results)
        print(f"\nmesh gains an endpoint -> first connection served through it: {converge:.1f} ms")
        return {**key_figures(results), "mesh_local_ratio": results["mesh_local"]["ratio"],
                "mesh_vxlan_ratio": results["mesh_vxlan"]["ratio"], "apply_to_served_ms": converge}
    finally:
        await lab.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument("-d", "--duration", type=float, default=3.0, help="seconds per path per round")
    parser.add_argument("-r", "--rounds", type=int, default=5, help="interleaved rounds (medians kept)")
    parser.add_argument("--tool", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--lab", action="store_true", help="measure a lab cluster (1 manager, 2 workers)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/mesh.py needs root (it creates network namespaces)")
    print(f"command: {' '.join(sys.argv)}")
    if args.lab:
        from mesh_lab import run_lab

        figures = run_lab(args.connections, args.duration, args.tool, args.rounds)
    else:
        figures = asyncio.run(run(args.connections, args.duration, args.tool, args.rounds))
    print(" ".join(f"{k}={v:.2f}" if k.endswith("ms") or k.endswith("ratio") else f"{k}={v:.0f}"
                   for k, v in figures.items()))


if __name__ == "__main__":
    main()
