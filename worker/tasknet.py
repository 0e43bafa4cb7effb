"""One task's network wiring on its node: a named network namespace, its interfaces, its resolv.conf.

Each wired task has a directory ``<state_dir>/<task id>/`` holding ``netns`` (the namespace, kept
alive by a bind mount, which the container joins), ``resolv.conf`` (bind-mounted read-only over the
container's /etc/resolv.conf: the node's DNS responder) and ``networks.json`` (the networks it was
attached to, so its interfaces can be found again after an agent restart) and, for a task wired in a
namespace of the pool, ``veths.json`` (its node-side veths' names by network: they keep the names the pool
gave them, see prewire.py; without the file they are ``task_ifname``'s). The directory is the
record: ``unwire`` removes the interfaces, the namespace and the directory; ``sweep`` does that for
every task an earlier run left without a container. With a pool (``network/pool.py``) a task gets a
namespace whose interfaces were made ahead, and only its addresses are set when it is wired.

When nothing runs in the namespace any more (``unwire(..., emptied=True)``: its container was deleted),
the interfaces are not deleted one by one: the kernel removes a veth pair with the namespace holding one
end, in its cleanup worker, many namespaces in one batch. An explicit veth delete waits, holding the
kernel's RTNL lock, for network-wide RCU grace periods: 0.1 s and more per task on a loaded machine,
during which the agent's loop (the request is synchronous) and every other netlink user on the host
(the other nodes' wiring) stood still -- a third of a worker's time during a rolling update.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoal import log
from shoal.proto import types_pb2 as pb
from shoal.worker.netmap import task_networks
from shoal.worker.network import netns, prewire
from shoal.worker.network.dns import task_resolv_conf
from shoal.worker.network.links import PlumbingError
from shoal.worker.network.node import task_ifname
from shoal.worker.network.pool import NetnsPool
from shoal.worker.network.topology import NodeNetwork, NodeSpec, task_ports

_log = log.get(__name__)


Alongside = Callable[["Wiring"], Awaitable[None]]
VETHS = "veths.json"  # a pooled task's node-side veth names (see the module docstring)


@dataclass(frozen=True)
class Wiring:
    """What a wired task's container needs: the namespace to join and the mounts that go with it."""

    netns_path: str
    mounts: list[dict[str, Any]] = field(default_factory=list)


class TaskWiring:
    """The wired tasks of one node, recorded under ``state_dir`` (see the module docstring)."""

    def __init__(self, state_dir: Path, plumbing: NodeNetwork, pool: NetnsPool | None = None) -> None:
        self.dir = state_dir
        self.plumbing = plumbing
        self.pool = pool
        """Namespaces wired ahead for tasks to come (None: each task's is made when it is wired)."""
        self._locks: dict[str, asyncio.Lock] = {}

    def path(self, task_id: str) -> Path:
        return self.dir / task_id

    def netns_path(self, task_id: str) -> str:
        return str(self.path(task_id) / "netns")

    def wired(self) -> list[str]:
        """Ids of the tasks with a record here."""
        try:
            return sorted(p.name for p in self.dir.iterdir() if p.is_dir())
        except FileNotFoundError:
            return []

    async def wire(self, task: pb.Task, spec: NodeSpec, alongside: Alongside | None = None) -> Wiring:
        """A fresh namespace for ``task`` with its addresses (an earlier half-made one is replaced).

        ``alongside(wiring)`` runs while the namespace is made (the container's create: it needs only the
        paths, and the launcher does its part while the kernel does this one); an error of either undoes
        the wiring and is raised, the alongside's first. What ``alongside`` made is the caller's to undo."""
        async with self._lock(task.id):
            await self._unwire(task.id)
            wiring = self._record(task, spec)
            networks = task_networks(task)
            plumbed = asyncio.ensure_future(self._plumb(task, wiring.netns_path, spec, networks))
            try:
                if alongside is not None:
                    await alongside(wiring)
            except BaseException:
                await asyncio.gather(plumbed, return_exceptions=True)
                await self._unwire(task.id, emptied=True)
                raise
            try:
                await plumbed
            except (OSError, PlumbingError):
                await self._unwire(task.id, emptied=True)
                raise
            return wiring

    def _record(self, task: pb.Task, spec: NodeSpec) -> Wiring:
        """The task's directory: the networks it is on, its resolv.conf; the paths its container needs."""
        d = self.path(task.id)
        d.mkdir(parents=True, mode=0o700)
        (d / "networks.json").write_text(json.dumps(sorted(task_networks(task))))
        nameserver = str(ipaddress.IPv4Interface(spec.gateway).ip)
        dns = task.spec.container.dns_config  # --dns-search/--dns-option; --dns servers are the responder's upstreams
        (d / "resolv.conf").write_text(task_resolv_conf(nameserver, list(dns.search), list(dns.options) or ["ndots:0"]))
        os.chmod(d / "resolv.conf", 0o644)
        mount = {"type": "bind", "source": str(d / "resolv.conf"), "target": "/etc/resolv.conf", "readonly": True}
        return Wiring(self.netns_path(task.id), [mount])

    async def _plumb(self, task: pb.Task, path: str, spec: NodeSpec, networks: dict[str, str]) -> None:
        """The namespace at ``path`` with the task's interfaces: one of the pool's, or made now."""
        began = made = time.monotonic()
        pooled = await self._from_pool(task, path, spec, networks)
        if not pooled:
            await asyncio.to_thread(netns.create, path)  # a new namespace can take the kernel a while: not on the loop
            made = time.monotonic()
            await self.plumbing.attach(task.id, path, task.bridge_address, networks, new=True)
        _log.debug("task wired", task=task.id, pooled=pooled, netns_s=round(made - began, 4),
                   attach_s=round(time.monotonic() - made, 4))

    async def _from_pool(self, task: pb.Task, path: str, spec: NodeSpec, networks: dict[str, str]) -> bool:
        """Wire the task in a ready namespace of the pool, if it has one for the task's shape (its veths'
        names are recorded first: an agent that dies during the claim still finds them)."""
        if self.pool is None:
            return False
        entry = self.pool.take(task_ports(spec, networks))
        if entry is None:
            return False
        veths = self.path(task.id) / VETHS
        veths.write_text(json.dumps(prewire.host_names(entry), sort_keys=True))
        if await self.plumbing.claim(entry, path, task.bridge_address, networks):
            return True
        veths.unlink()  # its namespace was gone: the task is wired the slow way, with names of its own
        return False

    def host_names(self, task_id: str) -> dict[str, str]:
        """The task's recorded node-side veth names by network (empty: ``task_ifname``'s; see the module docstring)."""
        try:
            names = json.loads((self.path(task_id) / VETHS).read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in names.items()} if isinstance(names, dict) else {}

    async def rewire(self, task: pb.Task, spec: NodeSpec) -> bool:
        """Wire a re-adopted task again (its namespace kept running): only missing pieces are added."""
        async with self._lock(task.id):
            path = self.netns_path(task.id)
            if not os.path.exists(path):
                return False
            await self.plumbing.attach(task.id, path, task.bridge_address, task_networks(task),
                                       host_names=self.host_names(task.id))
            return True

    async def unwire(self, task_id: str, emptied: bool = False) -> None:
        """Remove the task's interfaces, namespace and record (nothing when it has none). ``emptied``: no
        process is left in the namespace, so its interfaces go with it (see the module docstring)."""
        async with self._lock(task_id):
            await self._unwire(task_id, emptied)
        self._locks.pop(task_id, None)

    async def _unwire(self, task_id: str, emptied: bool = False) -> None:
        d = self.path(task_id)
        if not d.exists():
            return
        removed = False
        with contextlib.suppress(FileNotFoundError):
            removed = await asyncio.to_thread(netns.remove, self.netns_path(task_id))
        if not (emptied and removed):  # something may still hold the namespace: take its interfaces now
            await self._detach(task_id, d)
        await asyncio.to_thread(shutil.rmtree, d, ignore_errors=True)

    async def _detach(self, task_id: str, d: Path) -> None:
        try:
            networks = json.loads((d / "networks.json").read_text())
        except (OSError, ValueError):
            networks = []
        names = self.host_names(task_id) or {net: task_ifname(task_id, net) for net in ["", *networks]}
        try:
            await self.plumbing.detach(sorted(names.values()))
        except PlumbingError as e:  # the node's devices may be gone already (cleanup)
            _log.debug("task veths not removed", task=task_id, error=str(e))

    async def sweep(self, keep: set[str]) -> list[str]:
        """Unwire every recorded task not in ``keep``; returns their ids."""
        gone = [tid for tid in self.wired() if tid not in keep]
        for tid in gone:
            await self.unwire(tid)
        return gone

    def _lock(self, task_id: str) -> asyncio.Lock:
        return self._locks.setdefault(task_id, asyncio.Lock())
