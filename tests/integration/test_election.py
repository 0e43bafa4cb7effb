"""Leader election on a real etcd: the lease outlives a stalled event loop; a stale leader cannot write.

The leader keeps its lease from a thread (manager/election.py): a manager whose event loop is stuck in a
long pass is still the leader afterwards, with the same fence, so 1,000 nodes reconnecting or a big
reconcile pass does not cost a leader change. Safety does not depend on it: a leader whose lease ran out
while it was paused cannot write once another manager has won, whatever it believes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time

import pytest

from shoal.manager.election import Election
from shoal.manager.store import keys, objects
from shoal.manager.store.base import Put
from shoal.manager.store.writes import Conflict, Fence, Write, Writer

P = "/shoal/test/election/"


async def lead_forever(fences: list[Fence], leading: asyncio.Event, fence: Fence) -> None:
    fences.append(fence)
    leading.set()
    await asyncio.Event().wait()


async def test_a_leader_keeps_its_lease_through_an_event_loop_stall_longer_than_the_ttl(etcd_store):
    fences: list[Fence] = []
    leading = asyncio.Event()
    election = Election(etcd_store, "m1", ttl=2.0)
    task = asyncio.create_task(election.run(lambda f: lead_forever(fences, leading, f)))
    try:
        await asyncio.wait_for(leading.wait(), 10)
        time.sleep(3.5)  # the loop is stuck in something long: the keeper thread refreshes the lease meanwhile
        await asyncio.sleep(0.5)
        assert await objects.leader_of(etcd_store) == "m1"
        assert len(fences) == 1 and election.leader_id == "m1", "leadership was lost and won again"
        await Writer(etcd_store, fences[0]).apply(Write(ops=(Put(P + "after-stall", b"1"),)))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_leader_keeps_its_lease_on_a_loaded_machine_through_repeated_loop_stalls(etcd_store):
    """CPU burners (twice the cores) for the whole test, and the leader's event loop blocked for 0.8 s
    (more than TTL/3) again and again: no leader change, the same fence, and the leader can still write."""
    fences: list[Fence] = []
    leading = asyncio.Event()
    election = Election(etcd_store, "m1", ttl=2.0)
    task = asyncio.create_task(election.run(lambda f: lead_forever(fences, leading, f)))
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * (os.cpu_count() or 1))]
    try:
        await asyncio.wait_for(leading.wait(), 10)
        won = (await etcd_store.get(keys.LEADER)).create_revision
        for _ in range(8):  # 8 s of the loop mostly blocked: a big reconcile pass after another
            time.sleep(0.8)
            await asyncio.sleep(0.2)
        assert await objects.leader_of(etcd_store) == "m1"
        assert (await etcd_store.get(keys.LEADER)).create_revision == won, "the election key was won again"
        assert len(fences) == 1 and election.leader_id == "m1", "leadership was lost and won again"
        await Writer(etcd_store, fences[0]).apply(Write(ops=(Put(P + "after-load", b"1"),)))
    finally:
        for b in burners:
            b.kill()
            b.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_leader_whose_lease_ran_out_cannot_write_once_another_won(etcd_store):
    fences: dict[str, list[Fence]] = {"m1": [], "m2": []}
    leading = {"m1": asyncio.Event(), "m2": asyncio.Event()}
    first = Election(etcd_store, "m1", ttl=2.0)
    t1 = asyncio.create_task(first.run(lambda f: lead_forever(fences["m1"], leading["m1"], f)))
    await asyncio.wait_for(leading["m1"].wait(), 10)
    stale = Writer(etcd_store, fences["m1"][0])
    t1.cancel()  # m1 stops campaigning without noticing anything: a paused process, say
    with contextlib.suppress(asyncio.CancelledError):
        await t1
    second = Election(etcd_store, "m2", ttl=2.0)
    t2 = asyncio.create_task(second.run(lambda f: lead_forever(fences["m2"], leading["m2"], f)))
    try:
        await asyncio.wait_for(leading["m2"].wait(), 15)
        with pytest.raises(Conflict):
            await stale.apply(Write(ops=(Put(P + "stale", b"m1"),)))
        assert await etcd_store.get(P + "stale") is None, "the old leader's write did not land"
        await Writer(etcd_store, fences["m2"][0]).apply(Write(ops=(Put(P + "fresh", b"m2"),)))
        assert (await etcd_store.get(P + "fresh")) is not None
    finally:
        t2.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await t2
