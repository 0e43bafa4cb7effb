"""The agent's networking: the node's plumbing, mesh and DNS follow the network map; each task is wired.

The dispatcher streams the node's network map (``netmap``); after each change ``run`` makes the node
match it: ``NodeNetwork.ensure`` (the task bridge ``shoal0``, one VXLAN overlay per network), the
nftables mesh through ``MeshSync`` (VIPs and published ports over the serving tasks) and the DNS
responder's directory; the responder listens on the bridge's gateway address, port 53.

A task the manager gave addresses is wired before its container exists (``wire``, see ``tasknet``):
its own named network namespace, kept under the agent's data dir, gets its interfaces and addresses,
and the container joins it (``netns_path``) with a resolv.conf naming the node's responder; a pool keeps
a few namespaces wired ahead for the shapes of tasks the node had last (``network/pool.py``).
``unwire`` undoes it when the container is deleted. A standalone container joins a network the same
way through the local API (``shoal run --network``, see ``attachments`` and ``localapi``). Everything is idempotent: an agent restarted
with its containers still running wires the node again and its tasks keep their interfaces. When
the agent stops (shutdown, or the node leaves) ``cleanup`` removes everything shoal added here.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from pathlib import Path

from shoal import agentapi, log
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.retry import Backoff
from shoal.worker import localapi
from shoal.worker.attachments import Attachments
from shoal.worker.netmap import NetMap
from shoal.worker.network.dns import DnsResponder, read_resolv_conf
from shoal.worker.network.links import PlumbingError
from shoal.worker.network.meshsync import MeshSync
from shoal.worker.network.netns import NetnsError, read_sysctl, write_sysctl
from shoal.worker.network.nftapply import Nft
from shoal.worker.network.plan import Directory, mesh_for
from shoal.worker.network.pool import POOL_SIZE, NetnsPool
from shoal.worker.network.topology import NodeNetwork, NodeSpec
from shoal.worker.tasknet import Alongside, TaskWiring, Wiring

_log = log.get(__name__)

__all__ = ["NetAgent", "Wiring"]


class NetAgent:
    """The node's networking, driven by the network map (see the module docstring).

    ``netns``: the node's network namespace (a path; None: the agent's own). ``dns_port`` is 53 in a
    node; tests may pick another. ``local_api``: the abstract socket served in the node's namespace
    (default: ``agentapi.default_address()``; None: not served). ``direct_routing``: route the task
    subnets of the nodes on this node's link to them (``--direct-routing``, see network/routes.py).
    """

    def __init__(self, state_dir: Path, netns: str | None = None, resolv_conf: str = "/etc/resolv.conf",
                 dns_port: int = 53, local_api: str | None = "", pool_size: int = POOL_SIZE,
                 direct_routing: bool = False) -> None:
        self.netns = netns
        self.resolv_conf = resolv_conf
        self.dns_port = dns_port
        self.node_id = ""  # set by the agent once it is registered
        self.map = NetMap()
        self.plumbing = NodeNetwork(netns, direct_routing)
        self.mesh = MeshSync(Nft(netns))
        self.pool = NetnsPool(state_dir.parent / f"{state_dir.name}-pool", netns, size=pool_size)
        self.tasks = TaskWiring(state_dir, self.plumbing, self.pool)
        self.dns: DnsResponder | None = None
        self.directory = Directory([], [])
        self.spec: NodeSpec | None = None  # what the node was last made to match
        self.synced_version = -1  # the map version the node, mesh and directory follow
        self._changed = asyncio.Event()
        self._synced = asyncio.Condition()
        self._forward_before: str | None = None
        self.client_upstreams: dict[str, list[tuple[str, int]]] = {}
        """Task address -> its ``--dns`` servers; shared with the DNS responder (see _set_upstreams)."""
        self._client_tasks: dict[str, list[str]] = {}
        attach_dir = state_dir.parent / f"{state_dir.name}-attached"
        self.attached = Attachments(attach_dir, TaskWiring(attach_dir, self.plumbing), self.wait_for_networks)
        self.attached.on_change = self._changed.set
        self.local_api = agentapi.default_address() if local_api == "" else local_api  # what ``shoal run --network`` reaches
        self.api_server: asyncio.Server | None = None  # while run() serves the local API

    def on_map(self, msg: dpb.NetworkMap) -> None:
        """A network map message from the session (never blocks)."""
        self.map.apply(msg)
        self._changed.set()

    async def run(self) -> None:
        """Follow the map until cancelled: node plumbing, mesh and DNS (the mesh loop runs beside)."""
        await self.plumbing.open()
        self.attached.node_id = self.node_id
        if self.local_api:
            self.api_server = await localapi.serve(localapi.handler_for(self.attached), self.local_api, self.netns)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.mesh.run())
                tg.create_task(self.pool.run())
                tg.create_task(self._follow())
                tg.create_task(self._reap())
        finally:
            if self.api_server is not None:
                self.api_server.close()
                self.api_server = None

    async def _reap(self, period: float = 1.0) -> None:
        """Release the attachments whose containers ended (see ``Attachments.reap``)."""
        while True:
            await asyncio.sleep(period)
            try:
                await self.attached.reap()
            except (PlumbingError, NetnsError, OSError) as e:
                _log.warning("attachments not reaped; retrying", error=str(e))

    async def _follow(self) -> None:
        backoff = Backoff(first=0.2, cap=5.0)
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                await self.sync()
                backoff.reset()
            except (PlumbingError, NetnsError, OSError) as e:
                _log.warning("node networking not in line with the map; retrying", error=str(e))
                await backoff.sleep()
                self._changed.set()

    async def sync(self) -> None:
        """Make the node's plumbing, mesh and DNS match the map as it is now."""
        version = self.map.version
        spec = self.map.node_spec()
        if spec is None:
            return
        if spec != self.spec:
            if self._forward_before is None:  # restored by cleanup: the node's sysctl is not ours to keep
                self._forward_before = read_sysctl(self.netns, "net.ipv4.ip_forward")
            self.pool.retain(spec)  # before: the new spec may delete a bridge pooled veths are ports of
            await self.plumbing.ensure(spec)
            self.spec = spec
        services, tasks = self.map.service_nets(), self.map.task_nets()
        mesh = mesh_for(self.node_id, services, tasks, spec.local_subnets(), routed=self.plumbing.routed,
                        dsr=self.plumbing.dsr)
        self.mesh.set(mesh, self.map.revision, self.map.serving_ids())
        self.directory = Directory(services, [*tasks, *self.attached.task_nets()])
        if self.dns is not None:
            self.dns.lookup = self.directory
        async with self._synced:
            self.synced_version = version
            self._synced.notify_all()
        await self._ensure_dns(spec)  # last: a port already taken must not hold the mesh back

    async def _ensure_dns(self, spec: NodeSpec) -> None:
        gateway = str(ipaddress.IPv4Interface(spec.gateway).ip)
        if self.dns is not None and self.dns.host == gateway:
            return
        if self.dns is not None:
            await self.dns.close()
        upstreams = read_resolv_conf(self.resolv_conf, exclude=[gateway])
        dns = DnsResponder(self.directory, upstreams, host=gateway, port=self.dns_port, netns=self.netns)
        dns.client_upstreams = self.client_upstreams
        await dns.start()
        self.dns = dns
        _log.info("DNS responder listening", address=gateway, port=dns.port)

    async def wait_for_networks(self, names: set[str], timeout: float) -> NodeSpec:
        """The node's spec once it is wired for ``names`` (the map may name them after the task came)."""

        def ready() -> bool:
            return self.spec is not None and all(self.spec.overlay(n) for n in names)

        async with self._synced:
            try:
                async with asyncio.timeout(timeout):
                    await self._synced.wait_for(ready)
            except TimeoutError:
                missing = sorted(n for n in names if self.spec is None or not self.spec.overlay(n))
                raise PlumbingError(f"the node is not wired for network(s) {', '.join(missing) or 'of its own'} "
                                    f"after {timeout:.0f} s (no network map from the manager?)") from None
        assert self.spec is not None
        return self.spec

    async def wire(self, task: pb.Task, timeout: float = 30.0, alongside: Alongside | None = None) -> Wiring | None:
        """Wire a task the manager gave addresses (None: it has none, it keeps loopback only, and ``alongside``
        is not called); ``alongside(wiring)`` runs while its namespace is made (see ``TaskWiring.wire``)."""
        if not task.bridge_address:
            return None
        spec = await self.wait_for_networks({a.network for a in task.networks if a.address}, timeout)
        wiring = await self.tasks.wire(task, spec, alongside)
        self._set_upstreams(task)
        return wiring

    def _set_upstreams(self, task: pb.Task) -> None:
        """A task with ``--dns`` servers: names that are not services go there, not to the node's resolvers."""
        servers = [(s, 53) for s in task.spec.container.dns_config.nameservers]
        addresses = [task.bridge_address, *(a.address for a in task.networks if a.address)]
        clients = [str(ipaddress.ip_interface(a).ip) for a in addresses if a]
        self._client_tasks[task.id] = clients
        for client in clients:
            if servers:
                self.client_upstreams[client] = servers
            else:
                self.client_upstreams.pop(client, None)

    async def rewire(self, task: pb.Task, timeout: float = 30.0) -> None:
        """A re-adopted task: make sure its interfaces are all there (idempotent; connections survive)."""
        if task.bridge_address:
            spec = await self.wait_for_networks({a.network for a in task.networks if a.address}, timeout)
            await self.tasks.rewire(task, spec)
            self._set_upstreams(task)

    async def unwire(self, task_id: str, emptied: bool = False) -> None:
        """Undo ``wire``; nothing to do for a task that was never wired. ``emptied``: its container was
        deleted, nothing runs in its namespace (see ``TaskWiring.unwire``)."""
        for client in self._client_tasks.pop(task_id, []):
            self.client_upstreams.pop(client, None)
        await self.tasks.unwire(task_id, emptied)

    async def sweep(self, keep: set[str]) -> list[str]:
        """Unwire the tasks an earlier run wired whose containers are gone (``keep``: the containers left)."""
        return await self.tasks.sweep(keep)

    async def cleanup(self) -> None:
        """The node stops or leaves: remove every task's wiring, the DNS responder, the table, the devices."""
        if self.dns is not None:
            await self.dns.close()
            self.dns = None
        await self.plumbing.open()  # idempotent; the agent may stop before run() opened it
        await self.tasks.sweep(set())
        await self.pool.close()
        for att_id in self.attached.ids():  # their containers lose the node's networks: give the addresses back
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5.0):
                    await self.attached.release(att_id)
        with contextlib.suppress(Exception):
            await self.mesh.remove()
        removed = await self.plumbing.cleanup()
        await self.plumbing.close()
        if self._forward_before is not None:
            write_sysctl(self.netns, "net.ipv4.ip_forward", self._forward_before)
            self._forward_before = None
        self.spec, self.synced_version = None, -1
        _log.info("node networking removed", devices=len(removed))
