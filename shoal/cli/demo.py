"""``shoal demo lb``: load balancing made visible, through a service's published port.

The demo service (deploy/demos/lb: busybox httpd whose CGI answers ``task=<name> node=<host>``) is
asked ``--requests`` times, each on a new connection, through its published port on one node
(``--node``, default the first by hostname). The node's routing mesh picks a task anywhere in the
cluster for every connection; this prints how the requests spread per task and per node as bars,
and the total requests per second. The tally and the drawing are plain functions (unit tested);
the requests go out from this machine, which reaches a lab's hosts over the lab bridge.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from dataclasses import dataclass, field

import click

from shoal.cli import client
from shoal.proto import control_pb2, types_pb2

ANSWER_RE = re.compile(r"task=(\S+) node=(\S+)")
PATH = "/cgi-bin/whoami"
BAR_WIDTH = 40


@dataclass
class Tally:
    """What came back: requests per task and per node, and the failures."""

    tasks: Counter[str] = field(default_factory=Counter)
    nodes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, answer: str) -> None:
        """Count one answer (a response body, or ``error <what>``)."""
        m = ANSWER_RE.search(answer)
        if m is None:
            self.errors[answer.split("\n", 1)[0][:60] or "empty answer"] += 1
            return
        self.tasks[m.group(1)] += 1
        self.nodes[m.group(2)] += 1

    @property
    def served(self) -> int:
        return sum(self.tasks.values())


def bars(counts: Counter[str], width: int = BAR_WIDTH) -> list[str]:
    """One line per key, sorted by name: ``name  ████████  n (p%)``, the longest bar ``width`` wide."""
    if not counts:
        return []
    total, top = sum(counts.values()), max(counts.values())
    pad = max(len(k) for k in counts)
    lines = []
    for key in sorted(counts):
        n = counts[key]
        bar = "█" * max(1, round(width * n / top))
        lines.append(f"  {key:<{pad}}  {bar:<{width}}  {n:>5} ({100 * n / total:4.1f}%)")
    return lines


def report(tally: Tally, seconds: float, target: str) -> str:
    """The whole printout: per task, per node, failures, and the rate."""
    out = [f"{tally.served + sum(tally.errors.values())} requests to {target}", "", "per task:", *bars(tally.tasks),
           "", "per node:", *bars(tally.nodes)]
    if tally.errors:
        out += ["", "failed:", *(f"  {n:>5}  {what}" for what, n in tally.errors.most_common())]
    rate = tally.served / seconds if seconds > 0 else 0.0
    out += ["", f"{tally.served} served in {seconds:.2f} s: {rate:.0f} req/s"]
    return "\n".join(out)


async def _one(host: str, port: int, timeout: float) -> str:
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"GET {PATH} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            async with asyncio.timeout(timeout):
                data = await reader.read()
        finally:
            writer.close()
    except (OSError, TimeoutError) as e:
        return f"error {type(e).__name__}"
    text = data.decode(errors="replace")
    status = text.split("\r\n", 1)[0].split(" ")[1:2]  # a CGI's own headers end with a bare "\n\n"
    return text if status == ["200"] else f"error HTTP {' '.join(status) or 'no status'}"


async def fire(host: str, port: int, requests: int, concurrency: int, timeout: float = 5.0) -> tuple[Tally, float]:
    """``requests`` GETs, each on a new connection, ``concurrency`` at a time; the tally and the seconds taken."""
    tally, left = Tally(), iter(range(requests))

    async def worker() -> None:
        for _ in left:
            tally.add(await _one(host, port, timeout))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, requests)))))
    return tally, time.perf_counter() - started


def node_address(node: types_pb2.Node) -> str:
    """The address the node is reached at: its underlay, else the address the manager saw."""
    if node.network.underlay:
        return node.network.underlay
    return (node.status.addr or node.description.addr).rpartition(":")[0] or node.status.addr


def published_port(service: types_pb2.Service) -> int:
    """The service's first published port (as allocated, else as asked); 0 when it publishes none."""
    for ports in (service.endpoint.ports, service.spec.ports):
        for p in ports:
            if p.published_port:
                return p.published_port
    return 0


def _target(service: str, node: str | None) -> tuple[str, int, str]:
    stub = client.stub()
    svc = stub.GetService(control_pb2.GetServiceRequest(service_id=service)).service
    port = published_port(svc)
    if not port:
        raise click.ClickException(f"service {service} publishes no port: create it with -p PUBLISHED:TARGET")
    nodes = sorted(stub.ListNodes(control_pb2.ListNodesRequest()).nodes, key=lambda n: n.description.hostname)
    chosen = [n for n in nodes if node in (None, n.description.hostname, n.id)]
    if not chosen:
        known = ", ".join(n.description.hostname for n in nodes)
        raise click.ClickException(f"no node {node!r} in the cluster (nodes: {known})")
    return node_address(chosen[0]), port, chosen[0].description.hostname


@click.group("demo")
def demo_group() -> None:
    """Demonstrations on a running cluster (see deploy/demos/)."""


@demo_group.command("lb")
@click.option("--requests", "requests", type=click.IntRange(1, 1_000_000), default=600, show_default=True)
@click.option("--node", default=None, help="send through this node's published port (hostname or id; default: the first)")
@click.option("--service", default="lb", show_default=True, help="the demo service (deploy/demos/lb)")
@click.option("--concurrency", type=click.IntRange(1, 256), default=8, show_default=True)
def lb_command(requests: int, node: str | None, service: str, concurrency: int) -> None:
    """Send requests through a published port and show how the routing mesh spread them."""
    host, port, name = _target(service, node)
    tally, seconds = asyncio.run(fire(host, port, requests, concurrency))
    click.echo(report(tally, seconds, f"{name} ({host}:{port}), service {service}"))
    if not tally.served:
        raise click.ClickException(f"no request was served through {host}:{port}")
