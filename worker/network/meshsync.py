"""Keeps a node's nftables table equal to the latest mesh it was handed, one transaction at a time.

The agent calls ``set(mesh)`` whenever a task starts serving or stops, a service changes, or a node
comes or goes; ``set`` never blocks. ``run`` (a loop the agent owns in its TaskGroup) loads the newest
mesh it has: a burst of changes while ``nft`` is busy collapses into one load of the last of them, so
endpoints follow the cluster within one ``nft`` run of the change. A refused load is logged and tried
again with backoff (``shoal.retry``), and is never lost: a newer ``set`` simply replaces it.
"""

from __future__ import annotations

import asyncio

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
        self.loads = 0  # transactions sent (a skipped, unchanged mesh does not count)
        self._changed = asyncio.Event()
        self._settled = asyncio.Event()
        self._settled.set()  # nothing wanted yet: nothing to wait for

    def set(self, mesh: Mesh) -> None:
        """Make ``mesh`` the one to load next (replacing any not loaded yet)."""
        self.wanted = mesh
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
            mesh = self.wanted
            if mesh is None:
                continue
            outcome = await self._load_once(mesh)
            if outcome == "failed":
                await self.backoff.sleep()
                self._changed.set()  # try again, with whatever is newest by then
                continue
            self.backoff.reset()
            if outcome == "loaded":
                self.loaded = mesh
            if self.wanted is mesh:
                self._settled.set()

    async def remove(self) -> None:
        """Forget the mesh and delete the table (node leaving or shutting down)."""
        self.wanted = self.loaded = None
        self._settled.set()
        await self.nft.remove()
