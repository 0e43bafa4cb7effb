"""Several manager processes on one real etcd: one leader, fenced writes, and failover after kill -9.

Each manager is a separate process (this file run as a script) so that the leader can be killed with
SIGKILL mid-flight; agents are in-process fake agents that know every manager's address.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from shoal.etcdtls import EtcdTLS
from shoal.manager.store import keys
from shoal.proto import control_pb2 as cpb
from shoal.proto import control_pb2_grpc as cgrpc
from shoal.proto import types_pb2 as pb
from tests.timing import eventually

ROOT = Path(__file__).resolve().parents[2]


class ManagerProcs:
    """Up to N ``Manager`` processes on one etcd; the first creates the cluster, the others join it."""

    def __init__(self, tmp: Path, endpoint: str, tls: EtcdTLS | None = None) -> None:
        self.tls = tls
        from tests.fixtures.cluster import free_port

        self.tmp, self.endpoint, self.free_port = tmp, endpoint, free_port
        self.procs: dict[str, subprocess.Popen] = {}
        self.addrs: dict[str, str] = {}
        self.tokens: dict = {}

    def sock(self, name: str) -> str:
        return str(self.tmp / f"{name}.sock")

    async def start(self, name: str, ttl: float = 2.0) -> None:
        addr = f"127.0.0.1:{self.free_port()}"
        cfg = {"name": name, "data_dir": str(self.tmp / name), "addr": addr, "sock": self.sock(name), "etcd": self.endpoint, "ttl": ttl}
        if self.tls is not None:
            cfg["etcd_tls"] = [str(self.tls.ca), str(self.tls.cert), str(self.tls.key)]
        if self.tokens:
            cfg["join"] = next(iter(self.addrs.values()))
            cfg["token"] = self.tokens["manager"]
        (self.tmp / name / "ready.json").unlink(missing_ok=True)
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115  (closed with the process)
        p = subprocess.Popen([sys.executable, __file__, json.dumps(cfg)], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        log.close()
        self.procs[name] = p
        ready = self.tmp / name / "ready.json"
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert p.poll() is None, f"manager {name} exited: {(self.tmp / f'{name}.log').read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"manager {name} did not start"
            await asyncio.sleep(0.05)
        self.tokens = self.tokens or json.loads(ready.read_text())
        self.addrs[name] = addr

    def kill(self, name: str) -> None:
        p = self.procs.pop(name)
        p.send_signal(signal.SIGKILL)
        p.wait()
        self.addrs.pop(name)

    def stop(self) -> None:
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()

    def control(self, name: str) -> cgrpc.ControlStub:
        return cgrpc.ControlStub(grpc.aio.insecure_channel(f"unix:{self.sock(name)}"))


async def _leader(store) -> str:
    kv = await store.get(keys.LEADER)
    return kv.value.decode() if kv else ""


async def until(cond, timeout: float = 15.0):
    return await eventually(cond, timeout, ignore=(grpc.aio.AioRpcError,))


@pytest.fixture
async def managers(tmp_path, etcd_store, etcd_server):
    m = ManagerProcs(tmp_path, etcd_server.endpoint, etcd_server.tls)
    try:
        yield m
    finally:
        m.stop()


async def _agents(m: ManagerProcs, tmp: Path, n: int) -> list[asyncio.Task]:
    from shoal.worker.agent import Agent, AgentConfig
    from shoal.worker.executor_fake import FakeExecutor

    tasks = []
    for i in range(n):
        a = Agent(AgentConfig(list(m.addrs.values()), m.tokens["worker"], tmp / f"w{i}", hostname=f"w{i}"), FakeExecutor())
        tasks.append(asyncio.create_task(a.run()))
        await asyncio.wait_for(a.ready.wait(), 10)
    return tasks


async def _running(ctl, name: str) -> list[pb.Task]:
    tasks = (await ctl.ListTasks(cpb.ListTasksRequest(service_ids=[name]))).tasks
    return [t for t in tasks if t.desired_state == pb.RUNNING and t.status.state == pb.RUNNING]


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


async def _n(ctl, n):
    r = await _running(ctl, "web")
    return len(r) == n and r


async def _main(cfg: dict) -> None:
    from shoal.manager.server import Manager, ManagerConfig
    from shoal.node.join import join_as_manager

    data_dir = Path(cfg["data_dir"])
    data_dir.mkdir(parents=True, exist_ok=True)
    node_id = cfg["name"] * 12 + "x"
    joined = await join_as_manager(cfg["join"].split(","), cfg["token"], data_dir, node_id, cfg["name"]) if cfg.get("join") else None
    kek, node_id = joined if joined else (None, node_id)  # a joining manager gets its id from the cluster
    (data_dir / "id").write_text(json.dumps(node_id))
    mgr = Manager(
        ManagerConfig(
            data_dir=data_dir, node_id=node_id, listen_addr=cfg["addr"], socket_path=cfg["sock"], etcd_endpoints=[cfg["etcd"]], etcd_tls=EtcdTLS(*map(Path, cfg["etcd_tls"])) if cfg.get("etcd_tls") else None,
            heartbeat_period=0.2, election_ttl=cfg["ttl"], ca_kek=kek,
        )
    )
    run = asyncio.create_task(mgr.run())
    started = asyncio.create_task(mgr.started.wait())
    await asyncio.wait({run, started}, return_when=asyncio.FIRST_COMPLETED)
    if run.done():
        run.result()
    c = mgr.cluster_obj
    tmp = data_dir / "ready.tmp"
    tmp.write_text(json.dumps({"manager": c.manager_token, "worker": c.worker_token}))
    tmp.rename(data_dir / "ready.json")
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, run.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await run


if __name__ == "__main__":
    asyncio.run(_main(json.loads(sys.argv[1])))


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
