"""``svc logs`` of ended tasks on real etcd and gRPC (issue 13): a node keeps an ended task's log while the
task is in the manager's task history -- a finished job's, a restarted task's -- although its container
is gone, and deletes it when the task leaves the store (reaped past the history limit, service removed)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from shoal.proto import control_pb2 as cpb
from shoal.proto import logs_pb2 as lpb
from shoal.proto import logs_pb2_grpc as lgrpc
from shoal.proto import types_pb2 as pb
from shoal.worker.executor_fake import FakeExecutor
from tests.fixtures.cluster import Cluster, spec

pytestmark = [pytest.mark.etcd]
HISTORY = 2  # tasks kept per slot (docker's task_history_retention_limit; 5 by default)


@pytest.fixture
async def small_history(tmp_path, etcd_store, etcd_server) -> AsyncIterator[Cluster]:  # type: ignore[no-untyped-def]
    c = Cluster(tmp_path, etcd_server.endpoint, etcd_server.tls, history_limit=HISTORY)
    await c.start()
    try:
        yield c
    finally:
        await c.stop()


def kept(ex: FakeExecutor) -> set[str]:
    d = ex.kept_logs_dir()
    return set(os.listdir(d)) if d is not None and os.path.isdir(d) else set()


async def lines(cluster: Cluster, ref: str) -> list[tuple[str, str]]:
    stub = lgrpc.LogsStub(cluster.channel)
    msgs = [m async for m in stub.SubscribeLogs(lpb.SubscribeLogsRequest(services=[ref], tail=-1))]
    return sorted((ln.task_id, ln.data.decode()) for m in msgs for ln in m.lines)


async def test_a_finished_jobs_lines_are_shown_until_the_job_is_removed(small_history: Cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cluster = small_history
    executors = [FakeExecutor(log_dir=tmp_path / f"logs-{n}") for n in ("n1", "n2")]
    for n, ex in zip(("n1", "n2"), executors, strict=True):
        await cluster.add_agent(n, executor=ex)
    s = spec("job", replicas=2, labels={"fake.log": "did it", "fake.run_s": "0.05"}, mode=pb.ServiceSpec.REPLICATED_JOB)
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=s))

    async def done() -> list[pb.Task] | None:
        tasks = await cluster.tasks_of("job")
        ended = len(tasks) == 2 and all(t.status.state == pb.COMPLETE for t in tasks)
        return tasks if ended and not any(ex.containers for ex in executors) and sum(len(kept(ex)) for ex in executors) == 2 else None

    tasks = await cluster.until(done)
    assert {t.node_id for t in tasks} == {a.node_id for a, _ in cluster.agents.values()}, "one task per node"
    assert await lines(cluster, "job") == sorted((t.id, "did it\n") for t in tasks)
    assert await lines(cluster, tasks[0].id[:12]) == [(tasks[0].id, "did it\n")]
    await cluster.control.RemoveService(cpb.RemoveServiceRequest(service_id="job"))

    async def gone() -> bool:
        return not any(kept(ex) for ex in executors)

    await cluster.until(gone)
    assert all(set(os.listdir(ex.log_dir)) <= {"kept"} for ex in executors if ex.log_dir), "no log left behind"


async def test_replaced_tasks_lines_are_kept_until_reaped_past_the_history(small_history: Cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Four forced updates replace the task four times: the store keeps the running task and HISTORY - 1
    replaced ones (the running task counts), the node their logs, and none of the reaped tasks' logs."""
    cluster = small_history
    ex = FakeExecutor(log_dir=tmp_path / "logs")
    await cluster.add_agent("n1", executor=ex)
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=spec("web", replicas=1, labels={"fake.log": "up"})))
    await cluster.until(lambda: _running_since(cluster, ex, 1))
    for n in range(2, 6):
        svc = (await cluster.control.GetService(cpb.GetServiceRequest(service_id="web"))).service
        svc.spec.force_update += 1
        await cluster.control.UpdateService(cpb.UpdateServiceRequest(service_id=svc.id, version=svc.meta.version, spec=svc.spec))
        await cluster.until(lambda n=n: _running_since(cluster, ex, n))  # type: ignore[misc]

    async def settled() -> list[pb.Task] | None:
        tasks = await cluster.tasks_of("web")
        history = {t.id for t in tasks if t.desired_state != pb.RUNNING and t.status.state >= pb.COMPLETE}
        return tasks if len(tasks) == HISTORY and len(history) == HISTORY - 1 and kept(ex) == history else None

    tasks = await cluster.until(settled)
    reaped = set(ex.started) - {t.id for t in tasks}
    assert len(reaped) == 5 - HISTORY and not reaped & kept(ex), "the oldest tasks of the slot left the store"
    assert not any((tmp_path / "logs" / tid).exists() for tid in reaped)
    assert await lines(cluster, "web") == sorted((t.id, "up\n") for t in tasks), "the running task's and the kept one's"


async def _running_since(cluster: Cluster, ex: FakeExecutor, starts: int) -> bool:
    running = await cluster.running("web")
    return len(ex.started) == starts and [t.id for t in running] == ex.started[-1:]


async def test_an_agent_that_stops_deletes_the_logs_it_kept(small_history: Cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Node shutdown (or leave: the agent stops the same way) leaves no kept log behind."""
    cluster = small_history
    ex = FakeExecutor(log_dir=tmp_path / "logs")
    await cluster.add_agent("n1", executor=ex)
    s = spec("job", replicas=1, labels={"fake.log": "did it", "fake.run_s": "0.05"}, mode=pb.ServiceSpec.REPLICATED_JOB)
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=s))

    async def kept_one() -> bool:
        return len(kept(ex)) == 1 and not ex.containers

    await cluster.until(kept_one)
    await cluster.kill_agent("n1")
    assert os.listdir(tmp_path / "logs") == [], "neither the kept log nor its directory"
