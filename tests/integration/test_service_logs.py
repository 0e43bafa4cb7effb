"""``svc logs`` end to end on real etcd and gRPC: the manager gathers the lines from the agents that run
the tasks (their json-file logs), follows tasks that start later, survives an agent's reconnect, and
only ever takes a node's word for the node's own tasks."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import pytest

from shoal.proto import control_pb2 as cpb
from shoal.proto import logs_pb2 as lpb
from shoal.proto import logs_pb2_grpc as lgrpc
from shoal.worker.executor_fake import FakeExecutor
from tests.fixtures.cluster import Cluster, running_n, spec

pytestmark = [pytest.mark.etcd]


async def three_nodes(cluster: Cluster, tmp_path) -> dict[str, FakeExecutor]:  # type: ignore[no-untyped-def]
    executors = {}
    for name in ("n1", "n2", "n3"):
        executors[name] = FakeExecutor(log_dir=tmp_path / f"logs-{name}")
        await cluster.add_agent(name, executor=executors[name])
    return executors


async def web(cluster: Cluster, replicas: int = 3) -> list:  # type: ignore[type-arg]
    s = spec("web", replicas=replicas, labels={"fake.log": "hello"})
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=s))
    return await cluster.until(lambda: running_n(cluster, "web", replicas))


def owner(executors: dict[str, FakeExecutor], task_id: str) -> FakeExecutor:
    return next(e for e in executors.values() if task_id in e.containers)


async def test_logs_gather_the_lines_of_every_node_in_time_order(cluster: Cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    executors = await three_nodes(cluster, tmp_path)
    tasks = await web(cluster)
    assert {t.node_id for t in tasks} and len({t.node_id for t in tasks}) == 3
    for t in tasks:
        owner(executors, t.id).write_log(t.id, f"second line of {t.id}\n", stream="stderr")
    stub = lgrpc.LogsStub(cluster.channel)
    msgs = [m async for m in stub.SubscribeLogs(lpb.SubscribeLogsRequest(services=["web"], tail=-1))]
    lines = [ln for m in msgs for ln in m.lines]
    named = {t.task_id: t for m in msgs for t in m.tasks}
    assert sorted(ln.data.decode() for ln in lines if ln.stream == "stdout") == ["hello\n"] * 3
    assert {ln.task_id for ln in lines if ln.stream == "stderr"} == {t.id for t in tasks}
    assert [ln.timestamp_ns for ln in lines] == sorted(ln.timestamp_ns for ln in lines)
    assert {(n.service_name, n.node_name) for n in named.values()} == {("web", "n1"), ("web", "n2"), ("web", "n3")}
    assert sorted(n.slot for n in named.values()) == [1, 2, 3]
    # --tail 1: the last line of each task only; one task by its id
    msgs = [m async for m in stub.SubscribeLogs(lpb.SubscribeLogsRequest(services=["web"], tail=1))]
    assert sorted(ln.stream for m in msgs for ln in m.lines) == ["stderr"] * 3
    msgs = [m async for m in stub.SubscribeLogs(lpb.SubscribeLogsRequest(services=[tasks[0].id[:10]], tail=-1))]
    assert {ln.task_id for m in msgs for ln in m.lines} == {tasks[0].id}


async def test_unknown_service_is_not_found(cluster: Cluster) -> None:
    stub = lgrpc.LogsStub(cluster.channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        [m async for m in stub.SubscribeLogs(lpb.SubscribeLogsRequest(services=["nope"]))]
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "no such service or task: nope" in err.value.details()


async def collect(call, into: list[lpb.LogLine], named: dict[str, lpb.LogTask]) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
        async for m in call:
            into.extend(m.lines)
            named.update((t.task_id, t) for t in m.tasks)


async def test_follow_sees_new_lines_new_tasks_and_survives_a_reconnect(cluster: Cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    executors = await three_nodes(cluster, tmp_path)
    tasks = await web(cluster)
    call = lgrpc.LogsStub(cluster.channel).SubscribeLogs(lpb.SubscribeLogsRequest(services=["web"], follow=True, tail=-1))
    got: list[lpb.LogLine] = []
    named: dict[str, lpb.LogTask] = {}
    reader = asyncio.create_task(collect(call, got, named))

    async def seen(text: str, n: int = 1):  # type: ignore[no-untyped-def]
        return len([ln for ln in got if ln.data.decode() == text]) >= n

    try:
        await cluster.until(lambda: seen("hello\n", 3))
        t0 = tasks[0]
        owner(executors, t0.id).write_log(t0.id, "later\n")
        await cluster.until(lambda: seen("later\n"))
        # a task that starts after the stream opened is followed too
        svc = (await cluster.control.GetService(cpb.GetServiceRequest(service_id="web"))).service
        svc.spec.replicas = 4
        await cluster.control.UpdateService(cpb.UpdateServiceRequest(service_id=svc.id, version=svc.meta.version, spec=svc.spec))
        await cluster.until(lambda: seen("hello\n", 4))
        assert sorted(n.slot for n in named.values()) == [1, 2, 3, 4]
        # the agent running t0 drops its session and opens a new one: the stream goes on, no line twice
        agent = next(a for a, _ in cluster.agents.values() if a.node_id == t0.node_id)
        session_before = cluster.manager.dispatcher.sessions[agent.node_id].session_id
        agent.session.restart()
        await cluster.until(lambda: _new_session(cluster, agent.node_id, session_before))
        owner(executors, t0.id).write_log(t0.id, "after reconnect\n")
        await cluster.until(lambda: seen("after reconnect\n"))
        await asyncio.sleep(0.5)
        assert [ln.data for ln in got].count(b"later\n") == 1 and [ln.data for ln in got].count(b"hello\n") == 4
    finally:
        call.cancel()
        reader.cancel()
    # the CLI left: the subscription is gone from etcd and from every node
    await cluster.until(lambda: _no_subscriptions(cluster))


async def _new_session(cluster: Cluster, node_id: str, before: str) -> bool:
    s = cluster.manager.dispatcher.sessions.get(node_id)
    return s is not None and s.session_id != before


async def _no_subscriptions(cluster: Cluster) -> bool:
    return not cluster.manager.cache.objects["logsub"] and all(not a.logs.running for a, _ in cluster.agents.values())


async def test_only_managers_may_ask_and_a_node_speaks_only_for_its_own_tasks(cluster: Cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    executors = await three_nodes(cluster, tmp_path)
    tasks = await web(cluster)
    agent = next(a for a, _ in cluster.agents.values())
    async with agent.creds.channel(cluster.addr) as ch:
        stub = lgrpc.LogsStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            [m async for m in stub.SubscribeLogs(lpb.SubscribeLogsRequest(services=["web"]))]
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # a follow subscription is live; this node tries to publish a line of another node's task
        follow = lgrpc.LogsStub(cluster.channel).SubscribeLogs(lpb.SubscribeLogsRequest(services=["web"], follow=True))
        got: list[lpb.LogLine] = []
        reader = asyncio.create_task(collect(follow, got, {}))
        try:
            await cluster.until(lambda: _subscription_id(cluster))
            sub_id = await _subscription_id(cluster)
            other = next(t for t in tasks if t.node_id != agent.node_id)
            forged = lpb.PublishLogsMessage(subscription_id=sub_id, lines=[lpb.LogLine(task_id=other.id, data=b"forged\n", timestamp_ns=1)])
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.PublishLogs(iter([forged]))
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert b"forged\n" not in [ln.data for ln in got]
        finally:
            follow.cancel()
            reader.cancel()
    assert executors


async def _subscription_id(cluster: Cluster) -> str:
    subs = cluster.manager.cache.objects["logsub"]
    return next(iter(subs), "")
