"""The agent's networking on two namespace hosts with the real runtime: tasks wired from the network map.

Each host runs a ``NetAgent`` (in the host's namespace) fed with the network map the dispatcher would
send it, built here from a real ``Ipam``, and a ``RuntimeExecutor`` that wires each task before its
container is created in that wiring. Tasks ``a1`` (h1), ``a2`` and ``a3`` (h2) of service ``app``
(overlay ``web``, published port) and ``o1`` (h1) of service ``other`` (overlay ``back``) are real
containers serving HTTP with their name. A client namespace ``c`` sits behind h1. Traffic stays
between the namespaces this test made.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio

from shoal.manager.ipam import Ipam
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.runtime import Runtime
from shoal.worker.netagent import NetAgent
from shoal.worker.network import links
from shoal.worker.network.netns import iproute
from shoal.worker.network.plan import INGRESS
from shoal.worker.runtime_executor import RuntimeExecutor
from tests.fixtures.httpclient import client_argv
from tests.fixtures.runtime import cgroup_parent, teardown
from tests.integration.netkit import SERVER, Kit, labels, needs_root, sh

pytestmark = [*needs_root, pytest.mark.skipif(sh("which", "nft", check=False) == "", reason="needs nft (nftables)")]

UNDERLAY = {"h1": "192.168.96.1", "h2": "192.168.96.2"}
TASKS = {"a1": ("h1", "app", "web"), "a2": ("h2", "app", "web"), "a3": ("h2", "app", "web"),
         "o1": ("h1", "other", "back")}
PUBLISHED = 30091


@dataclass
class Cluster:
    kit: Kit
    ipam: Ipam
    tmp: Path
    runtime: Runtime | None = None
    agents: dict[str, NetAgent] = field(default_factory=dict)
    runs: dict[str, asyncio.Task] = field(default_factory=dict)
    executors: dict[str, RuntimeExecutor] = field(default_factory=dict)
    health: dict[str, int] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)

    def ns(self, short: str) -> str:
        return f"{self.kit.prefix}{short}"

    def task(self, tid: str) -> pb.Task:
        host, svc, net = TASKS[tid]
        t = pb.Task(id=tid, service_name=svc, node_id=host, bridge_address=str(self.ipam.task_address(host, tid)))
        t.spec.container.image = "host"
        t.spec.container.args.extend([os.path.realpath(sys.executable), "-c", SERVER, tid, "8080"])
        for n in sorted({net, INGRESS} if svc == "app" else {net}):
            t.networks.add(network_id=f"id-{n}", network=n, address=str(self.ipam.network_address(n, tid)))
        return t

    def network_map(self, host: str) -> dpb.NetworkMap:
        node = self.ipam.node_subnet(host)
        info = pb.NodeNetworkInfo(subnet=str(node.subnet), gateway=f"{node.gateway}/{node.subnet.prefixlen}",
                                  underlay=UNDERLAY[host])
        nets = []
        for name in ("web", "back", INGRESS):
            n = self.ipam.network(name)
            nets.append(dpb.MapNetwork(id=f"id-{name}", name=name, vxlan_id=n.vxlan_id, subnet=str(n.subnet),
                                       vip_block=str(n.vip_block), node_address=str(self.ipam.node_address(name, host)),
                                       peers=[a for h, a in UNDERLAY.items() if h != host], ingress=name == INGRESS))
        return dpb.NetworkMap(full=True, node=info, networks=nets, services=[self._service("app", "web", host),
                                                                               self._service("other", "back", host)])

    def _service(self, name: str, net: str, host: str) -> dpb.MapService:
        s = dpb.MapService(id=f"id-{name}", name=name)
        s.networks.add(target=f"id-{net}")
        s.virtual_ips.add(network_id=f"id-{net}", network=net, addr=f"{self.ipam.vip(name, net)}/24")
        s.ports.add(target_port=8080, published_port=PUBLISHED if name == "app" else 0)
        for tid, (h, svc, _) in TASKS.items():
            if svc == name and tid not in self.gone:
                t = self.task(tid)
                mt = s.tasks.add(id=tid, node_id=h, health=self.health.get(tid, pb.HEALTH_NONE))
                mt.addresses.extend(t.networks)
                if h == host:
                    mt.bridge_address = t.bridge_address
        return s

    async def send_maps(self) -> None:
        """Every host gets its map; returns once each host's node, mesh and DNS follow it."""
        for host, agent in self.agents.items():
            agent.on_map(self.network_map(host))
        for agent in self.agents.values():
            await asyncio.wait_for(_synced(agent), 15)

    def start_agent(self, host: str) -> NetAgent:
        agent = NetAgent(self.tmp / host / "net", netns=self.kit.path(self.ns(host)),
                         resolv_conf=str(self.tmp / "no-upstreams.conf"))
        agent.node_id = host
        self.agents[host] = agent
        self.runs[host] = asyncio.create_task(agent.run())
        assert self.runtime is not None
        self.executors[host] = RuntimeExecutor(self.runtime, network=agent)
        return agent

    def get(self, netns_path: str, host: str, port: int, n: int) -> list[str]:
        out = sh("nsenter", f"--net={netns_path}", *client_argv(host, port, n))
        return json.loads(out)

    async def listening(self, tid: str, timeout: float = 20.0) -> None:
        """Wait until task ``tid``'s server answers on its own address."""
        own = str(self.ipam.task_address(TASKS[tid][0], tid).ip)
        for _ in range(int(timeout / 0.2)):
            if labels(self.get(self.task_netns(tid), own, 8080, 1)) == {tid: 1}:
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"task {tid} does not serve")

    def task_netns(self, tid: str) -> str:
        return self.agents[TASKS[tid][0]].tasks.netns_path(tid)


async def _synced(agent: NetAgent) -> None:
    while agent.synced_version != agent.map.version:
        await asyncio.sleep(0.02)
    await agent.mesh.settled()


async def _stop_run(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cl(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    tmp = tmp_path_factory.mktemp("netagent")
    (tmp / "no-upstreams.conf").write_text("")
    ipam = Ipam.create()
    for name in ("web", "back", INGRESS):
        ipam.create_network(name)
    c = Cluster(Kit(), ipam, tmp)
    c.runtime = Runtime(tmp / "runtime", cgroup_parent=cgroup_parent())
    await c.runtime.open()
    try:
        for short in (*UNDERLAY, "c"):
            c.kit.ns(short)
        c.kit.veth(c.ns("h1"), "eth0", c.ns("h2"), "eth0")
        c.kit.veth(c.ns("h1"), "ext0", c.ns("c"), "eth0")
        c.kit.ip(c.ns("h1"), "addr add 192.168.97.1/24 dev ext0\n")
        c.kit.ip(c.ns("c"), "addr add 192.168.97.2/24 dev eth0\n")
        for host, addr in UNDERLAY.items():
            c.kit.ip(c.ns(host), f"addr add {addr}/24 dev eth0\n")
            c.start_agent(host)
        await c.send_maps()
        for tid, (host, _, _) in TASKS.items():
            await c.executors[host].prepare(c.task(tid))
            await c.executors[host].start(c.task(tid))
        for tid in TASKS:
            await c.listening(tid)
        yield c
    finally:
        await teardown(c.runtime)
        for host, agent in c.agents.items():
            await _stop_run(c.runs[host])
            with contextlib.suppress(Exception):
                await agent.cleanup()
        c.kit.close()


@pytest.mark.asyncio(loop_scope="module")
async def test_the_published_port_and_the_vip_reach_every_task_of_the_service(cl: Cluster):
    assert set(labels(cl.get(cl.kit.path(cl.ns("c")), "192.168.97.1", PUBLISHED, 45))) == {"a1", "a2", "a3"}
    vip = str(cl.ipam.vip("app", "web"))
    assert set(labels(cl.get(cl.task_netns("a1"), vip, 8080, 45))) == {"a1", "a2", "a3"}


@pytest.mark.asyncio(loop_scope="module")
async def test_a_task_reaches_a_task_on_another_node_over_its_overlay_but_not_across_networks(cl: Cluster):
    a3_web = str(cl.ipam.network_address("web", "a3").ip)
    assert labels(cl.get(cl.task_netns("a1"), a3_web, 8080, 1)) == {"a3": 1}
    o1_back = str(cl.ipam.network_address("back", "o1").ip)
    answers = cl.get(cl.task_netns("a2"), o1_back, 8080, 1)
    assert answers[0].startswith("error"), f"a task of web reached a task of back: {answers}"


@pytest.mark.asyncio(loop_scope="module")
async def test_tasks_resolve_services_on_their_networks_through_the_nodes_responder(cl: Cluster):
    assert cl.runtime is not None
    script = ("import socket,sys\nfor n in sys.argv[1:]:\n try: print(n, sorted(socket.gethostbyname_ex(n)[2]))\n"
              " except OSError: print(n, 'none')\n")
    res = await cl.runtime.exec("a1", [os.path.realpath(sys.executable), "-c", script, "app", "tasks.app", "other"], timeout=20)
    out = dict(line.split(" ", 1) for line in res.output.decode().splitlines())
    web = {t: str(cl.ipam.network_address("web", t).ip) for t in ("a1", "a2", "a3")}
    assert out["app"] == str([str(cl.ipam.vip("app", "web"))])
    assert out["tasks.app"] == str(sorted(web.values()))
    assert out["other"] == "none", "a service on another network is not answered"


# what ``shoal run --network`` does first: one request to the agent at the default name, from where it runs
CALL = ("import asyncio\nfrom shoal import agentapi\ntry:\n    asyncio.run(agentapi.call({'op': 'nope'}))\n"
        "except agentapi.AgentApiError as e:\n    print(e)\n")


@pytest.mark.asyncio(loop_scope="module")
async def test_each_agent_serves_its_local_api_in_its_own_nodes_namespace(cl: Cluster):
    env = {k: v for k, v in os.environ.items() if k != "SHOAL_AGENT_SOCKET"}
    for host in UNDERLAY:
        out = await asyncio.to_thread(subprocess.run, ["nsenter", f"--net={cl.kit.path(cl.ns(host))}", sys.executable,
                                                       "-c", CALL], capture_output=True, text=True, env=env)
        assert out.stdout.strip() == "unknown request 'nope'", (host, out.stdout, out.stderr)


@pytest.mark.asyncio(loop_scope="module")
async def test_an_unhealthy_task_gets_no_new_connections_and_comes_back_when_healthy(cl: Cluster):
    cl.health["a2"] = pb.HEALTH_UNHEALTHY
    await cl.send_maps()
    assert set(labels(cl.get(cl.kit.path(cl.ns("c")), "192.168.97.1", PUBLISHED, 30))) == {"a1", "a3"}
    cl.health["a2"] = pb.HEALTH_HEALTHY
    await cl.send_maps()
    assert "a2" in labels(cl.get(cl.kit.path(cl.ns("c")), "192.168.97.1", PUBLISHED, 30))


@pytest.mark.asyncio(loop_scope="module")
async def test_a_restarted_agent_wires_again_and_its_tasks_keep_serving(cl: Cluster):
    await _stop_run(cl.runs["h2"])  # as after kill -9: nothing cleaned up, the process' sockets closed
    old = cl.agents["h2"]
    assert old.dns is not None
    await old.dns.close()
    before = list((cl.tmp / "h2" / "net").iterdir())
    pool = cl.tmp / "h2" / "net-pool"
    for _ in range(100):  # the pool the dead agent had: namespaces wired ahead for the shape of a2 and a3
        if pool.is_dir() and len(list(pool.iterdir())) == old.pool.size:
            break
        await asyncio.sleep(0.05)
    left = {p.name for p in pool.iterdir()}
    assert len(left) == old.pool.size
    agent = cl.start_agent("h2")
    assert await agent.sweep({"a2", "a3"}) == []
    await cl.send_maps()
    for tid in ("a2", "a3"):
        await cl.executors["h2"].adopt(cl.task(tid))
    assert sorted(p.name for p in before) == ["a2", "a3"]
    assert set(labels(cl.get(cl.kit.path(cl.ns("c")), "192.168.97.1", PUBLISHED, 45))) == {"a1", "a2", "a3"}
    for _ in range(100):  # the responder binds right after the mesh is set
        if agent.dns is not None:
            break
        await asyncio.sleep(0.05)
    assert agent.dns is not None and agent.dns.host == str(cl.ipam.node_subnet("h2").gateway)
    for _ in range(100):  # the new agent removed them (their veths went with them), and made none yet: no task came
        if not pool.exists():
            break
        await asyncio.sleep(0.05)
    assert not pool.exists() and not any(str(pool) in line for line in Path("/proc/self/mountinfo").read_text().splitlines())


@pytest.mark.asyncio(loop_scope="module")
async def test_a_removed_task_leaves_no_namespace_or_veth_and_cleanup_leaves_nothing(cl: Cluster):
    cl.gone.add("a3")
    await cl.send_maps()
    ex = cl.executors["h2"]
    await ex.stop("a3", 1.0)
    await ex.remove("a3")
    assert not (cl.tmp / "h2" / "net" / "a3").exists()
    assert set(labels(cl.get(cl.kit.path(cl.ns("c")), "192.168.97.1", PUBLISHED, 30))) == {"a1", "a2"}
    assert cl.runtime is not None
    for info in await cl.runtime.list():
        await cl.runtime.delete(info.id, force=True)
    for host, agent in cl.agents.items():
        await _stop_run(cl.runs[host])
        await agent.cleanup()
        async with iproute(cl.kit.path(cl.ns(host))) as ipr:
            assert await links.marked(ipr) == []
        tables = subprocess.run(["nsenter", f"--net={cl.kit.path(cl.ns(host))}", "nft", "list", "tables"],
                                capture_output=True, text=True, check=True).stdout
        assert "shoal" not in tables
        assert list((cl.tmp / host / "net").iterdir()) == []
        assert not (cl.tmp / host / "net-pool").exists()  # (its veths were among the marked links)
    assert not any(os.path.ismount(p) for p in cl.tmp.rglob("netns"))
