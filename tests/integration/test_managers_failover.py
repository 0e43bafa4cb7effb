"""Several manager processes on one real etcd: one leader, fenced writes, and failover after kill -9.

The manager processes and fake agents are tests/fixtures/managers.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest

from shoal.manager.store import keys
from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb
from tests.fixtures.managers import ManagerProcs, _agents, _leader, _n, _running, until


@pytest.fixture
async def managers(tmp_path, etcd_store, etcd_server):
    m = ManagerProcs(tmp_path, etcd_server.endpoint, etcd_server.tls)
    try:
        yield m
    finally:
        m.stop()


async def test_kill_leader_during_scale_up_new_leader_converges(managers, etcd_store, tmp_path):
    for name in ("m1", "m2", "m3"):
        await managers.start(name)
    leader = await until(lambda: _leader(etcd_store))
    agents = await _agents(managers, tmp_path, 2)
    try:
        from tests.fixtures.cluster import spec

        ctl = {name: managers.control(name) for name in managers.addrs}
        await ctl["m1"].CreateService(cpb.CreateServiceRequest(spec=spec(replicas=2)))
        await until(lambda: _n(ctl["m2"], 2))
        ids = {name: json.loads((tmp_path / name / "id").read_text()) for name in managers.addrs}
        leader_name = next(n for n, i in ids.items() if i == leader)
        other = next(n for n in managers.addrs if n != leader_name)
        svc = (await ctl[other].GetService(cpb.GetServiceRequest(service_id="web"))).service
        s = pb.ServiceSpec()
        s.CopyFrom(svc.spec)
        s.replicas = 6
        await ctl[other].UpdateService(cpb.UpdateServiceRequest(service_id=svc.id, version=svc.meta.version, spec=s))
        managers.kill(leader_name)  # mid scale-up: the leader may have written some of the new tasks
        await until(lambda: _n(ctl[other], 6), timeout=20)
        new_leader = await _leader(etcd_store)
        assert new_leader and new_leader != leader
        tasks = (await ctl[other].ListTasks(cpb.ListTasksRequest(service_ids=["web"]))).tasks
        live = [t for t in tasks if t.desired_state == pb.RUNNING]
        assert sorted(t.slot for t in live) == [1, 2, 3, 4, 5, 6], "one live task per slot"
        # every surviving manager serves the control API and agrees
        for name in managers.addrs:
            assert len(await _running(ctl[name], "web")) == 6
    finally:
        for t in agents:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t


async def test_stale_fence_cannot_write_and_lost_races_retry(etcd_store):
    """A deposed leader's Writer is refused; a batch that lost a race is decided again and lands."""
    from shoal.manager.cache import ClusterCache
    from shoal.manager.orchestrator.loop import Orchestrator
    from shoal.manager.scheduler.loop import Scheduler
    from shoal.manager.store import objects
    from shoal.manager.store.base import Put
    from shoal.manager.store.writes import Fence, Writer
    from tests.fixtures.cluster import spec

    won = await etcd_store.txn([], [Put(keys.LEADER, b"me")])
    cache = ClusterCache(etcd_store)
    run_cache = asyncio.create_task(cache.run())
    await cache.ready.wait()
    svc = pb.Service(id="s1", spec=spec(replicas=4), spec_version=1)
    stale = Writer(etcd_store, Fence(keys.LEADER, won.revision - 1))
    assert await stale.apply_batches([objects.tasks.update(pb.Task(id="t-stale", service_id="s1"), 0)]) == (0, 0)
    assert await etcd_store.get(keys.key("task", "t-stale")) is None

    node = pb.Node(id="n1")
    node.description.hostname = "n1"
    await etcd_store.txn([], [Put(keys.key("service", "s1"), keys.encode(svc)), Put(keys.key("node", "n1"), keys.encode(node)), Put(keys.key("session", "n1"), b"")])

    class Saboteur:
        """Before the first two scheduler transactions, touch a task they compare: they lose the race."""

        def __init__(self, store) -> None:
            self.store, self.lost = store, 0

        def __getattr__(self, name):
            return getattr(self.store, name)

        async def txn(self, compares, success, failure=()):
            task_keys = [c.key for c in compares if c.key.startswith(keys.KINDS["task"][0]) and c.target == "mod"]
            if task_keys and self.lost < 2:
                kv = await self.store.get(task_keys[0])
                await self.store.put(kv.key, kv.value)  # a concurrent write bumps its revision
                res = await self.store.txn(compares, success, failure)
                self.lost += not res.succeeded
                return res
            return await self.store.txn(compares, success, failure)

    fence = Fence(keys.LEADER, won.revision)
    sab = Saboteur(etcd_store)
    loops = [asyncio.create_task(Orchestrator(cache, Writer(etcd_store, fence)).run()), asyncio.create_task(Scheduler(cache, Writer(sab, fence)).run())]
    try:

        async def assigned():
            ts = [v.obj for v in cache.objects["task"].values()]
            return len(ts) == 4 and all(t.node_id == "n1" and t.status.state == pb.ASSIGNED for t in ts)

        await until(assigned, timeout=10)
        assert sab.lost == 2
    finally:
        for t in [*loops, run_cache]:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
