"""``svc logs -f`` goes on when the manager holding the worker's session dies and the worker reconnects
to another one: the subscription lives on the CLI's manager (its lease), the new session brings it to
the worker again, and the worker, which never stopped reading, sends each line once."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import pytest

from shoal.manager.store import keys
from shoal.proto import control_pb2 as cpb
from shoal.proto import logs_pb2 as lpb
from shoal.proto import logs_pb2_grpc as lgrpc
from shoal.proto import types_pb2 as pb
from shoal.worker.agent import Agent, AgentConfig
from shoal.worker.executor_fake import FakeExecutor
from tests.fixtures.cluster import spec
from tests.fixtures.managers import ManagerProcs, until


@pytest.fixture
async def managers(tmp_path, etcd_store, etcd_server):  # type: ignore[no-untyped-def]
    m = ManagerProcs(tmp_path, etcd_server.endpoint, etcd_server.tls)
    try:
        yield m
    finally:
        m.stop()


async def _session_manager(store, node_id: str) -> str:  # type: ignore[no-untyped-def]
    kv = await store.get(keys.key("session", node_id))
    if kv is None:
        return ""
    rec = pb.NodeSession()
    rec.ParseFromString(kv.value)
    return rec.manager_id


async def test_follow_survives_the_workers_manager_dying(managers: ManagerProcs, etcd_store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    await managers.start("m1")
    await managers.start("m2")
    ex = FakeExecutor(log_dir=tmp_path / "logs")
    agent = Agent(AgentConfig([managers.addrs["m2"], managers.addrs["m1"]], managers.tokens["worker"], tmp_path / "w", hostname="w"), ex)
    run = asyncio.create_task(agent.run())
    channel = grpc.aio.insecure_channel(f"unix:{managers.sock('m1')}")
    got: list[bytes] = []
    follow = None
    reader = None
    try:
        await asyncio.wait_for(agent.ready.wait(), 10)
        m2_id = await until(lambda: _session_manager(etcd_store, agent.node_id))
        ctl = managers.control("m1")
        await ctl.CreateService(cpb.CreateServiceRequest(spec=spec("web", replicas=1, labels={"fake.log": "hello"})))
        task = await until(lambda: _one_running(ctl))
        follow = lgrpc.LogsStub(channel).SubscribeLogs(lpb.SubscribeLogsRequest(services=["web"], follow=True, tail=-1))

        async def collect() -> None:
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                async for m in follow:
                    got.extend(ln.data for ln in m.lines)

        reader = asyncio.create_task(collect())
        await until(lambda: _seen(got, b"hello\n"))
        managers.kill("m2")  # the worker's session goes with it; the worker reconnects to m1
        await until(lambda: _moved(etcd_store, agent.node_id, m2_id), timeout=20)
        ex.write_log(task.id, "after failover\n")
        await until(lambda: _seen(got, b"after failover\n"), timeout=20)
        await asyncio.sleep(0.5)
        assert got.count(b"hello\n") == 1 and got.count(b"after failover\n") == 1
    finally:
        if follow is not None:
            follow.cancel()
        if reader is not None:
            reader.cancel()
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
        await channel.close()


async def _one_running(ctl) -> pb.Task | None:  # type: ignore[no-untyped-def]
    tasks = (await ctl.ListTasks(cpb.ListTasksRequest(service_ids=["web"]))).tasks
    running = [t for t in tasks if t.status.state == pb.RUNNING]
    return running[0] if len(running) == 1 else None


async def _seen(got: list[bytes], line: bytes) -> bool:
    return line in got


async def _moved(store, node_id: str, before: str) -> bool:  # type: ignore[no-untyped-def]
    now = await _session_manager(store, node_id)
    return bool(now) and now != before
