"""Keeps a node's nftables table equal to the latest mesh it was handed, one transaction at a time.

The agent calls ``set(mesh)`` whenever a task starts serving or stops, a service changes, or a node
comes or goes; ``set`` never blocks. ``run`` (a loop the agent owns in its TaskGroup) loads the newest
mesh it has: a burst of changes while ``nft`` is busy collapses into one load of the last of them, so
endpoints follow the cluster within one ``nft`` run of the change. A refused load is logged and tried
again with backoff (``shoal.retry``), and is never lost: a newer ``set`` simply replaces it.

Each mesh comes with the revision of the manager's network map it follows; once it is loaded (or was
already), ``on_loaded`` is told that revision, and the agent tells the manager, which stops a task
that served through the mesh only when every node balancing it has loaded a mesh without it
(``manager.dispatcher.drain``). A refused mesh is never acknowledged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from shoal import log
from shoal.retry import Backoff
from shoal.worker.network.nft import Mesh, NftError
from shoal.worker.network.nftapply import Nft, NftApplyError

_log = log.get(__name__)


class MeshSync:
    """The newest wanted mesh and the loop that loads it (see the module docstring)."""

    def __init__(self, nft: Nft, backoff: Backoff | None = None) -> None:
        self.nft = nft
        self.backoff = backoff or Backoff(first=0.2, cap=5.0)
        self.wanted: Mesh | None = None
        self.loaded: Mesh | None = None
        self.revision = 0  # the map revision ``wanted`` follows
        self.serving: frozenset[str] = frozenset()  # the ids of the tasks ``wanted`` balances over (for the trace)
        self.on_loaded: Callable[[int], None] | None = None  # told the map revision of each mesh loaded
        self._loaded_serving: frozenset[str] = frozenset()
        self.loads = 0  # transactions sent (a skipped, unchanged mesh does not count)
        self._changed = asyncio.Event()
        self._settled = asyncio.Event()
        self._settled.set()  # nothing wanted yet: nothing to wait for

    def set(self, mesh: Mesh, revision: int = 0, serving: frozenset[str] = frozenset()) -> None:
        """Make ``mesh`` (of the map at ``revision``, over the tasks ``serving``) the one to load next
        (replacing any not loaded yet)."""
        self.wanted, self.revision, self.serving = mesh, revision, serving
        self._settled.clear()
        self._changed.set()

    async def settled(self) -> None:
        """Wait until the newest mesh given to ``set`` is dealt with (loaded, or refused as bad data)."""
        await self._settled.wait()

    async def _load_once(self, mesh: Mesh) -> str:
        """"loaded", "refused" (bad data: retrying cannot help) or "failed" (try again)."""
        try:
            if await self.nft.apply(mesh):
                self.loads += 1
        except NftError as e:
            _log.error("mesh not loadable; keeping the previous rules", error=str(e))
            return "refused"
        except NftApplyError as e:
            _log.warning("mesh load failed; retrying", error=str(e))
            return "failed"
        return "loaded"

    async def run(self) -> None:
        """Load each newest mesh as it comes; runs until cancelled."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            mesh, revision, serving = self.wanted, self.revision, self.serving
            if mesh is None:
                continue
            began = time.monotonic()
            outcome = await self._load_once(mesh)
            if outcome == "failed":
                await self.backoff.sleep()
                self._changed.set()  # try again, with whatever is newest by then
                continue
            self.backoff.reset()
            if outcome == "loaded":
                self.loaded = mesh
                self._acknowledge(revision, serving, time.monotonic() - began)
            if self.wanted is mesh:
                self._settled.set()

    def _acknowledge(self, revision: int, serving: frozenset[str], took_s: float) -> None:
        if serving != self._loaded_serving:  # what ``bench/timeline.py`` lines up against the stops
            _log.debug("mesh loaded", revision=revision, took_s=round(took_s, 4),
                       removed=sorted(self._loaded_serving - serving), added=sorted(serving - self._loaded_serving))
            self._loaded_serving = serving
        if revision and self.on_loaded is not None:
            self.on_loaded(revision)

    async def remove(self) -> None:
        """Forget the mesh and delete the table (node leaving or shutting down)."""
        self.wanted = self.loaded = None
        self._settled.set()
        await self.nft.remove()
