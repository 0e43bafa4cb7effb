"""MeshSync: the newest mesh wins, bursts collapse, failures are retried, bad data is not."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from shoal.retry import Backoff
from shoal.worker.network.meshsync import MeshSync
from shoal.worker.network.nft import Endpoint, Frontend, Mesh, NftError, build
from shoal.worker.network.nftapply import NftApplyError


class SlowNft:
    """Stands in for Nft: each load takes a moment; can fail (nft refusing) a number of times first."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.loaded: list[Mesh] = []
        self.removed = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def apply(self, mesh: Mesh) -> bool:
        build(mesh)  # bad data raises NftError, as the real one does
        await self.gate.wait()
        await asyncio.sleep(0.01)
        if self.fail:
            self.fail -= 1
            raise NftApplyError("nft -f - failed: Error: Could not process rule")
        if self.loaded and self.loaded[-1] == mesh:
            return False
        self.loaded.append(mesh)
        return True

    async def remove(self) -> None:
        self.removed += 1


def mesh(n: int) -> Mesh:
    return Mesh((Frontend("web", 80, tuple(Endpoint(f"10.0.0.{i + 1}", 80) for i in range(n)), vip="10.9.0.1"),))


@pytest.fixture
async def sync_and_nft() -> AsyncIterator[tuple[MeshSync, SlowNft]]:
    nft = SlowNft()
    sync = MeshSync(nft, Backoff(first=0.01, cap=0.05, rand=random.Random(1).random))  # type: ignore[arg-type]
    task = asyncio.create_task(sync.run())
    try:
        yield sync, nft
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_mesh_is_loaded_and_settled(sync_and_nft):
    sync, nft = sync_and_nft
    await asyncio.wait_for(sync.settled(), 1)  # nothing wanted: settled at once
    sync.set(mesh(2))
    await asyncio.wait_for(sync.settled(), 2)
    assert nft.loaded == [mesh(2)] and sync.loaded == mesh(2) and sync.loads == 1


async def test_a_burst_collapses_into_the_newest_mesh(sync_and_nft):
    sync, nft = sync_and_nft
    nft.gate.clear()  # nft busy
    sync.set(mesh(1))
    await asyncio.sleep(0.02)
    for n in range(2, 9):
        sync.set(mesh(n))
    nft.gate.set()
    await asyncio.wait_for(sync.settled(), 2)
    assert nft.loaded[-1] == mesh(8)
    assert len(nft.loaded) <= 2  # the one in flight, then the newest: none of the 6 in between


async def test_a_failed_load_is_retried_until_it_goes_in(sync_and_nft):
    sync, nft = sync_and_nft
    nft.fail = 3
    sync.set(mesh(3))
    await asyncio.wait_for(sync.settled(), 2)
    assert nft.loaded == [mesh(3)] and sync.backoff.failures == 0


async def test_a_newer_mesh_replaces_one_that_keeps_failing(sync_and_nft):
    sync, nft = sync_and_nft
    nft.fail = 2
    sync.set(mesh(1))
    await asyncio.sleep(0.005)
    sync.set(mesh(5))
    await asyncio.wait_for(sync.settled(), 2)
    assert nft.loaded[-1] == mesh(5)


async def test_bad_data_is_not_retried_and_the_previous_rules_stay(sync_and_nft):
    sync, nft = sync_and_nft
    sync.set(mesh(2))
    await asyncio.wait_for(sync.settled(), 2)
    bad = Mesh((Frontend("web", 0, (), vip="10.9.0.1"),))
    with pytest.raises(NftError):
        build(bad)
    sync.set(bad)
    await asyncio.wait_for(sync.settled(), 2)
    assert sync.loaded == mesh(2) and nft.loaded == [mesh(2)]


async def test_remove_forgets_the_mesh_and_deletes_the_table(sync_and_nft):
    sync, nft = sync_and_nft
    sync.set(mesh(1))
    await asyncio.wait_for(sync.settled(), 2)
    await sync.remove()
    assert nft.removed == 1 and sync.loaded is None and sync.wanted is None
    await asyncio.wait_for(sync.settled(), 1)
