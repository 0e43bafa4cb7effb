"""Leader election on an etcd lease: one manager runs the orchestrators and the scheduler.

The election key is created only if absent and rides on the candidate's lease (TTL 2 s by default,
``--election-ttl``; 1 s is the least etcd grants with LAN timing, 2 s with its defaults). It is kept
alive every quarter of the TTL from threads of their own, on an etcd connection of their own
(``shoal.manager.leasekeeper``), so a leader keeps its lease through stalls of its event loop (a big
reconcile pass, 1,000 nodes reconnecting) and slow etcd answers that would otherwise cost a false
leader change; it gives the lease up only when etcd says it is gone, its event loop is wedged, or
etcd has not answered for seconds. A dead leader's key goes when its lease runs out: TTL after its last keepalive plus up to
0.5 s for etcd's lessor to notice (plus etcd's election timeout when its raft leader died with it).
The winner's fence is the key's create_revision, which every leader write compares, so a leader that
lost its lease (paused, partitioned) cannot write even if it has not noticed yet.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from prometheus_client import Gauge

from shoal import log
from shoal.manager.leasekeeper import LeaseKeeper
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
        before, self.leader_id = self.leader_id, await objects.leader_of(self.store)
        if before and not self.leader_id:  # when a dead leader's lease ran out (where a failover's time goes)
            _log.info("leader key gone", previous=before)

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
        refresh = self.store.blocking_lease_refresh()
        keeper = LeaseKeeper(refresh, lease, self.ttl) if refresh is not None else None
        keeping = asyncio.create_task(self._keep(keeper) if keeper is not None else self._refresh_loop(lease))
        try:
            done, _ = await asyncio.wait({work, keeping}, return_when=asyncio.FIRST_COMPLETED)
            if work in done:
                work.result()  # a crash of the leader's loops surfaces here
            else:
                _log.warning("lost leadership", reason=keeping.result())
        finally:
            if keeper is not None:
                keeper.stop()
            for t in (keeping, work):
                t.cancel()
            shutdown = False
            for t in (keeping, work):
                try:
                    await t
                except asyncio.CancelledError:
                    # the task's own cancellation ends here; the election's (a shutdown) must go on up,
                    # or a manager stopped at this moment would campaign forever instead of stopping
                    current = asyncio.current_task()
                    shutdown = shutdown or (current is not None and current.cancelling() > 0)
                except Exception:  # noqa: S110  (a crash of the work was raised by work.result() above)
                    pass
            if shutdown:
                raise asyncio.CancelledError

    async def _keep(self, keeper: LeaseKeeper) -> str:
        """Run the keeper's thread; beat for it while this loop lives; return why the lease was lost."""
        loop = asyncio.get_running_loop()
        lost = asyncio.Event()

        def notify() -> None:  # from the keeper's thread
            with contextlib.suppress(RuntimeError):  # the loop closed first: nobody to tell
                loop.call_soon_threadsafe(lost.set)

        keeper.start(notify)
        while not lost.is_set():
            keeper.beat()
            try:
                async with asyncio.timeout(keeper.every):
                    await lost.wait()
            except TimeoutError:
                pass
        return keeper.lost or "lease lost"

    async def _refresh_loop(self, lease: int) -> str:
        """For a store on the event loop (the in-memory one): refresh from here; return why it stopped."""
        while True:
            await asyncio.sleep(self.ttl / 4)
            try:
                await self.store.lease_refresh(lease)
            except StoreError as exc:
                return f"lease not refreshed: {exc}"
