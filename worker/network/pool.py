"""A few network namespaces per task shape, wired ahead of the tasks that will take them.

A rolling update replaces tasks one after another on each node, and each replacement waited for its
namespace and its veths to be made (prewire.py says why that is slow) before its container could be
created. The pool keeps ``size`` namespaces ready for each of the last ``shapes`` task shapes the node
wired (a shape: the task's ports, ``task_ports``: the same networks under the same node spec), one more
each time a take found that shape's entries all taken (up to ``max_size``: a node's share of a wide
batch, 5 of a rolling update's 10 on 2 nodes, is then ready at once after the first burst), and
refills after each take, on a thread and a netlink socket of its own (``SideLoop``), off the path of
the task being wired. A task finds one ready (``take``) or is wired the slow way; either way it ends
with the same interfaces, names and addresses.

Nothing outlives the pool's owner: entries live under ``dir`` (``<dir>/<id>/netns``, a bind mount), and
``run`` removes whatever an earlier run left there (an agent that crashed) before it makes any, and
``close`` (the node stops or leaves) removes every entry and its veths. A node spec that changes drops
the entries it no longer fits (``retain``, before the node's plumbing follows the new spec, which may
delete a bridge they are ports of).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections import OrderedDict
from pathlib import Path

from shoal import log
from shoal.retry import Backoff
from shoal.worker.network import netns, prewire
from shoal.worker.network.links import PlumbingError
from shoal.worker.network.node import NodeNet
from shoal.worker.network.prewire import Ports, Prewired
from shoal.worker.network.sideloop import SideLoop
from shoal.worker.network.topology import NodeSpec, task_ports

_log = log.get(__name__)

POOL_SIZE = 4
"""Namespaces kept ready per shape: a node's share of a rolling update's batch (parallelism 10 over 2-3 nodes)."""
POOL_MAX = 8
"""The most entries a shape grows to (see the module docstring)."""
POOL_SHAPES = 3
"""Shapes kept: the ones the node wired last (a shape's entries go when it drops out)."""


class NetnsPool:
    """Ready namespaces of one node (``netns``: the node's namespace path, None for the agent's own)."""

    def __init__(self, dir: Path, netns_path: str | None = None, size: int = POOL_SIZE, shapes: int = POOL_SHAPES,
                 max_size: int = POOL_MAX) -> None:
        self.dir = dir
        self.netns = netns_path
        self.size = size
        self.max_size = max(max_size, size)
        self.shapes = shapes
        self.sizes: dict[Ports, int] = {}  # the shapes grown past ``size``
        self.side = SideLoop("shoal-netpool")
        self.ready: dict[Ports, list[Prewired]] = {}
        self.wanted: OrderedDict[Ports, None] = OrderedDict()
        self._doomed: list[Prewired] = []
        self._kick = asyncio.Event()
        self._net: NodeNet | None = None  # the pool's socket on the node, opened on its side loop

    def take(self, ports: Ports) -> Prewired | None:
        """A ready namespace wired for ``ports``, now the caller's (see ``prewire.claim``); None when none is."""
        if self.size <= 0:
            return None
        known = ports in self.wanted
        self._want(ports)
        entries = self.ready.get(ports)
        if entries:
            return entries.pop(0)
        if known:  # its entries were all taken: a burst wider than the pool, keep one more from now on
            self.sizes[ports] = min(self.target(ports) + 1, self.max_size)
        return None

    def target(self, ports: Ports) -> int:
        """How many entries the pool keeps ready for ``ports``."""
        return self.sizes.get(ports, self.size)

    def _want(self, ports: Ports) -> None:
        self.wanted.pop(ports, None)
        self.wanted[ports] = None
        while len(self.wanted) > self.shapes:
            old, _ = self.wanted.popitem(last=False)
            self._drop(old)
        self._kick.set()

    def _drop(self, ports: Ports) -> None:
        self._doomed += self.ready.pop(ports, [])
        self.sizes.pop(ports, None)

    def retain(self, spec: NodeSpec) -> None:
        """The node is about to follow ``spec``: drop the shapes (and their entries) it changes."""
        for ports in list(self.wanted):
            if _fits(ports, spec):
                continue
            del self.wanted[ports]
            self._drop(ports)
        self._kick.set()

    def count(self) -> int:
        """Entries ready now."""
        return sum(len(e) for e in self.ready.values())

    async def run(self) -> None:
        """Clear what an earlier run left, then keep every wanted shape at its ``target`` of ready entries until cancelled."""
        await self.side.run(self._purge)
        backoff = Backoff(first=0.5, cap=10.0)
        while True:
            await self._kick.wait()
            self._kick.clear()
            try:
                await self._fill()
                backoff.reset()
            except Exception as e:  # the pool is an optimisation: a task finds none ready and is wired the slow way
                _log.warning("network namespace pool not refilled; retrying", error=str(e), kind=type(e).__name__)
                await backoff.sleep()
                self._kick.set()

    async def _fill(self) -> None:
        while True:
            await self._drop_doomed()
            ports = next((p for p in reversed(self.wanted) if len(self.ready.get(p, [])) < self.target(p)), None)
            if ports is None:
                return
            entry = await self.side.run(lambda: self._make(ports))  # noqa: B023  # awaited here, in this turn
            if ports in self.wanted:
                self.ready.setdefault(ports, []).append(entry)
            else:  # its shape went meanwhile
                self._doomed.append(entry)

    async def _drop_doomed(self) -> None:
        doomed, self._doomed = self._doomed, []
        for entry in doomed:
            await self.side.run(lambda: self._remove(entry))  # noqa: B023  # awaited here, in this turn

    async def _on_side(self) -> NodeNet:
        if self._net is None:
            net = NodeNet(self.netns)
            await net.open()
            self._net = net
        return self._net

    async def _make(self, ports: Ports) -> Prewired:
        """A new namespace wired for ``ports`` (on the side loop; undone if that fails)."""
        entry_id = uuid.uuid4().hex[:12]
        path = str(self.dir / entry_id / "netns")
        os.makedirs(os.path.dirname(path), mode=0o700)
        try:
            netns.create(path)
            return await prewire.prewire(await self._on_side(), entry_id, path, ports)
        except BaseException:
            with contextlib.suppress(OSError):
                netns.remove(path)
            shutil.rmtree(os.path.dirname(path), ignore_errors=True)
            raise

    async def _remove(self, entry: Prewired, unplug: bool = False) -> None:
        """Drop an entry: its namespace (its veths go with it, in the kernel's own time; ``unplug``: now)."""
        if unplug:
            with contextlib.suppress(PlumbingError):
                await prewire.unplug(await self._on_side(), entry)
        with contextlib.suppress(OSError):
            netns.remove(entry.path)
        shutil.rmtree(os.path.dirname(entry.path), ignore_errors=True)

    async def _purge(self) -> None:
        """Remove every namespace under ``dir`` (an earlier run's, or this one's at close)."""
        if self.dir.is_dir():
            for d in self.dir.iterdir():
                with contextlib.suppress(OSError):
                    netns.remove(str(d / "netns"))
            shutil.rmtree(self.dir, ignore_errors=True)

    async def close(self) -> None:
        """Remove every entry now, veths included (the node stops or leaves), and stop the side thread."""
        entries = [e for es in self.ready.values() for e in es] + self._doomed
        self.ready, self._doomed = {}, []
        self.wanted.clear()

        async def remove_all() -> None:
            for entry in entries:
                await self._remove(entry, unplug=True)
            await self._purge()
            net, self._net = self._net, None
            if net is not None:
                await net.close()

        await self.side.run(remove_all)
        await self.side.close()


def _fits(ports: Ports, spec: NodeSpec) -> bool:
    """Whether a task on the networks of ``ports`` gets exactly ``ports`` under ``spec``."""
    try:
        return task_ports(spec, [p.network for p in ports if p.network]) == ports
    except PlumbingError:
        return False
