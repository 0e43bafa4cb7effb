"""A rehearsal of the agent wiring: Ipam plans, NodeNetwork wires, mesh_for + MeshSync balance, on two hosts.

Two namespace hosts on a veth underlay run tasks ``a1`` (h1), ``a2`` and ``a3`` (h2) of service
``app`` on overlay ``web`` with a published port; each host keeps its table with a ``MeshSync`` fed by
``mesh_for`` from plain views, as the agent will. When a task stops serving, new connections avoid it
as soon as its node's sync settles; the time it takes is the mesh's share of endpoint convergence.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio

from shoal.manager.ipam import Ipam
from shoal.worker.network.meshsync import MeshSync
from shoal.worker.network.nftapply import Nft
from shoal.worker.network.plan import INGRESS, NODE, Port, ServiceNet, TaskNet, mesh_for
from shoal.worker.network.topology import NodeNetwork, NodeSpec, OverlaySpec
from tests.integration.netkit import Kit, labels, needs_root, sh

pytestmark = [*needs_root, pytest.mark.skipif(sh("which", "nft", check=False) == "", reason="needs nft (nftables)")]

UNDERLAY = {"h1": "192.168.94.1", "h2": "192.168.94.2"}
TASKS = {"a1": "h1", "a2": "h2", "a3": "h2"}
PUBLISHED = 30090


@dataclass
class Rehearsal:
    kit: Kit
    ipam: Ipam
    nets: dict[str, NodeNetwork] = field(default_factory=dict)
    syncs: dict[str, MeshSync] = field(default_factory=dict)
    serving: set[str] = field(default_factory=lambda: set(TASKS))

    def ns(self, short: str) -> str:
        return f"{self.kit.prefix}{short}"

    def spec(self, host: str) -> NodeSpec:
        node = self.ipam.node_subnet(host)
        overlays = tuple(OverlaySpec(n, self.ipam.network(n).vxlan_id, str(self.ipam.network(n).subnet),
                                     str(self.ipam.node_address(n, host)), str(self.ipam.network(n).vip_block))
                         for n in ("web", INGRESS))
        return NodeSpec(f"{node.gateway}/{node.subnet.prefixlen}", UNDERLAY[host],
                        tuple(a for h, a in UNDERLAY.items() if h != host), overlays, uplink="eth0")

    def views(self) -> tuple[list[ServiceNet], list[TaskNet]]:
        svc = ServiceNet("app", ("web",), {"web": str(self.ipam.vip("app", "web"))}, (Port(8080, PUBLISHED),))
        tasks = [TaskNet("app", host, {NODE: str(self.ipam.task_address(host, t).ip),
                                       "web": str(self.ipam.network_address("web", t).ip),
                                       INGRESS: str(self.ipam.network_address(INGRESS, t).ip)}, t in self.serving)
                 for t, host in TASKS.items()]
        return [svc], tasks

    async def sync(self) -> None:
        """Every host loads the plan for the current views and settles."""
        services, tasks = self.views()
        for host, s in self.syncs.items():
            s.set(mesh_for(host, services, tasks, self.spec(host).local_subnets()))
        await asyncio.gather(*(asyncio.wait_for(s.settled(), 10) for s in self.syncs.values()))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rh() -> AsyncIterator[Rehearsal]:
    kit = Kit()
    ipam = Ipam.create()
    ipam.create_network("web")
    ipam.create_network(INGRESS)
    r = Rehearsal(kit, ipam)
    runners = []
    try:
        for short in (*UNDERLAY, *TASKS, "c"):
            kit.ns(short)
        kit.veth(r.ns("h1"), "eth0", r.ns("h2"), "eth0")
        kit.veth(r.ns("h1"), "ext0", r.ns("c"), "eth0")  # an outside client behind h1
        kit.ip(r.ns("h1"), "addr add 192.168.95.1/24 dev ext0\n")
        kit.ip(r.ns("c"), "addr add 192.168.95.2/24 dev eth0\n")
        for host, addr in UNDERLAY.items():
            kit.ip(r.ns(host), f"addr add {addr}/24 dev eth0\n")
            r.nets[host] = NodeNetwork(kit.path(r.ns(host)))
            await r.nets[host].open()
            await r.nets[host].ensure(r.spec(host))
            r.syncs[host] = MeshSync(Nft(kit.path(r.ns(host))))
            runners.append(asyncio.create_task(r.syncs[host].run()))
        for task, host in TASKS.items():
            await r.nets[host].attach(task, kit.path(r.ns(task)), str(ipam.task_address(host, task)),
                                      {n: str(ipam.network_address(n, task)) for n in ("web", INGRESS)})
            kit.serve(r.ns(task), task)
        await r.sync()
        yield r
    finally:
        for t in runners:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for host, net in r.nets.items():
            with contextlib.suppress(Exception):
                await r.syncs[host].remove()
            await net.close()
        kit.close()


@pytest.mark.asyncio(loop_scope="module")
async def test_the_vip_and_the_published_port_serve_every_task(rh):
    vip = str(rh.ipam.vip("app", "web"))
    assert set(labels(rh.kit.get(rh.ns("a1"), vip, 8080, 45))) == {"a1", "a2", "a3"}
    assert set(labels(rh.kit.get(rh.ns("c"), "192.168.95.1", PUBLISHED, 45))) == {"a1", "a2", "a3"}


@pytest.mark.asyncio(loop_scope="module")
async def test_a_task_that_stops_serving_gets_no_new_connections_once_synced(rh):
    rh.serving.discard("a2")
    started = time.perf_counter()
    await rh.sync()
    took = time.perf_counter() - started
    vip = str(rh.ipam.vip("app", "web"))
    assert set(labels(rh.kit.get(rh.ns("a1"), vip, 8080, 30))) == {"a1", "a3"}
    assert set(labels(rh.kit.get(rh.ns("c"), "192.168.95.1", PUBLISHED, 30))) == {"a1", "a3"}
    assert took < 1.0, f"both nodes took {took:.2f} s to load the change"
    rh.serving.add("a2")
    await rh.sync()
    assert "a2" in labels(rh.kit.get(rh.ns("c"), "192.168.95.1", PUBLISHED, 30))


@pytest.mark.asyncio(loop_scope="module")
async def test_an_unchanged_plan_sends_nothing_to_nft(rh):
    loads = {h: s.loads for h, s in rh.syncs.items()}
    await rh.sync()
    assert {h: s.loads for h, s in rh.syncs.items()} == loads
