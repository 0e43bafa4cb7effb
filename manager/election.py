"""Leader election on an etcd lease: one manager runs the orchestrators and the scheduler.

The election key is created only if absent and rides on the candidate's lease (TTL 2 s by default, kept
alive every quarter of it, so a leader survives 1.5 s of stalls; a dead leader's key goes 1.5-2 s after its
last keepalive plus up to 0.5 s for etcd's lessor to notice: failover in ~2-2.5 s).
The winner's fence is the key's create_revision, which every leader write compares, so a leader that
lost its lease (paused, partitioned) cannot write even if it has not noticed yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from prometheus_client import Gauge

from shoal import log
from shoal.manager.store import objects
from shoal.manager.store.base import Store, StoreError
from shoal.manager.store.writes import Conflict, Fence, Writer
from shoal.retry import Backoff

_log = log.get(__name__)
IS_LEADER = Gauge("shoal_manager_leader", "1 when this manager is the leader")


class Election:
    def __init__(self, store: Store, manager_id: str, ttl: float = 2.0) -> None:
        self.store = store
        self.manager_id = manager_id
        self.ttl = ttl
        self.leader_id = ""
        self.poll = min(ttl / 30, 0.1)  # how soon a follower notices the leader key is gone

    async def _observe(self) -> None:
        self.leader_id = await objects.leader_of(self.store)

    async def run(self, lead: Callable[[Fence], Awaitable[None]]) -> None:
        """Campaign forever; while elected, run ``lead(fence)``; stop it as soon as the lease is lost."""
        unavailable = Backoff(0.1, 0.5)  # between tries while the store cannot be reached
        while True:
            try:
                await self._observe()
                unavailable.reset()
                if self.leader_id:  # someone leads: watch for the key to go (cheap gets, no lease churn)
                    await asyncio.sleep(self.poll)
                    continue
                lease = await self.store.lease_grant(self.ttl)
                try:
                    won_at = await Writer(self.store).apply(objects.campaign(self.manager_id, lease))
                except Conflict:
                    await self.store.lease_revoke(lease)
                    await self._observe()
                    continue
                self.leader_id = self.manager_id
                IS_LEADER.set(1)
                _log.info("elected leader", manager=self.manager_id)
                try:
                    await self._hold(lease, objects.fence(won_at), lead)
                finally:
                    IS_LEADER.set(0)
                    self.leader_id = ""
                    try:
                        await self.store.lease_revoke(lease)
                    except StoreError:
                        pass
            except StoreError as exc:
                _log.warning("election: store unavailable", error=str(exc))
                await unavailable.sleep()

    async def _hold(self, lease: int, fence: Fence, lead: Callable[[Fence], Awaitable[None]]) -> None:
        work = asyncio.create_task(lead(fence))
        try:
            while not work.done():
                done, _ = await asyncio.wait({work}, timeout=self.ttl / 4)
                if done:
                    break
                try:
                    await self.store.lease_refresh(lease)
                except StoreError as exc:
                    _log.warning("lost leadership: lease not refreshed", error=str(exc))
                    return
            work.result()  # a crash of the leader's loops surfaces here
        finally:
            work.cancel()
            try:
                await work
            except (asyncio.CancelledError, Exception):
                pass
