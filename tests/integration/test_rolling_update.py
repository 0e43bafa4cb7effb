"""Rolling updates and rollbacks end to end on real etcd and gRPC (agents on the fake executor).

The fake executor's container labels make a task fail to start (``fake.fail_start``) or fail its
health check (``fake.health=unhealthy``), so an update to such a spec fails the way a bad image does.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from shoal.manager.server import Manager, ManagerConfig
from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb
from tests.fixtures.cluster import Cluster, running_n, spec

US = pb.UpdateStatus
MS = 10**6


def checked(
    replicas: int = 4,
    order: int = pb.UpdateConfig.STOP_FIRST,
    action: int = pb.UpdateConfig.PAUSE,
    parallelism: int = 2,
) -> pb.ServiceSpec:
    s = spec(replicas=replicas)
    s.container.healthcheck.test[:] = ["CMD", "true"]
    s.container.healthcheck.interval_ns = 50 * MS
    s.container.healthcheck.retries = 1
    s.restart_policy.delay_ns = 100 * MS
    uc = s.update_config
    uc.parallelism, uc.order, uc.failure_action, uc.monitor_ns = parallelism, order, action, 200 * MS  # type: ignore[assignment]
    s.rollback_config.parallelism, s.rollback_config.monitor_ns = 0, 100 * MS
    return s


async def service(cluster: Cluster) -> pb.Service:
    return (await cluster.control.GetService(cpb.GetServiceRequest(service_id="web"))).service


async def update(cluster: Cluster, change, rollback: bool = False) -> pb.Service:  # type: ignore[no-untyped-def]
    svc = await service(cluster)
    new = pb.ServiceSpec()
    new.CopyFrom(svc.spec)
    change(new)
    req = cpb.UpdateServiceRequest(service_id=svc.id, version=svc.meta.version, spec=new, rollback=rollback)
    return (await cluster.control.UpdateService(req)).service


async def state_is(cluster: Cluster, *states: int) -> pb.Service | None:
    svc = await service(cluster)
    return svc if svc.update_status.state in states else None


def label(key: str, value: str):  # type: ignore[no-untyped-def]
    return lambda s: s.container.labels.__setitem__(key, value)


async def ready_count(cluster: Cluster) -> int:
    listed = await cluster.control.ListServices(cpb.ListServicesRequest(names=["web"]))
    return next(iter(listed.summaries.values())).running


async def test_start_first_update_keeps_every_replica_ready_and_keeps_slots(cluster: Cluster) -> None:
    for n in ("w1", "w2"):
        await cluster.add_agent(n)
    await cluster.control.CreateService(
        cpb.CreateServiceRequest(spec=checked(order=pb.UpdateConfig.START_FIRST))
    )
    await cluster.until(lambda: running_n(cluster, "web", 4))
    await update(cluster, label("version", "2"))
    lowest = 4
    while not await state_is(cluster, US.COMPLETED):
        lowest = min(lowest, await ready_count(cluster))
        await asyncio.sleep(0.02)
    assert lowest == 4, "start-first never has fewer ready tasks than replicas"
    running = await cluster.running("web")
    assert sorted(t.slot for t in running) == [1, 2, 3, 4]
    assert all(t.spec.container.labels["version"] == "2" for t in running)
    svc = await service(cluster)
    assert (
        svc.update_status.message == "update completed"
        and svc.update_status.completed_at_ns >= svc.update_status.started_at_ns
    )


async def test_an_update_whose_health_check_fails_rolls_back_by_itself_with_the_reason(
    cluster: Cluster,
) -> None:
    await cluster.add_agent("w1")
    await cluster.control.CreateService(
        cpb.CreateServiceRequest(spec=checked(action=pb.UpdateConfig.ROLLBACK))
    )
    await cluster.until(lambda: running_n(cluster, "web", 4))
    await update(cluster, label("fake.health", "unhealthy"))
    svc = await cluster.until(lambda: state_is(cluster, US.ROLLBACK_COMPLETED), timeout=20)
    assert "fake.health" not in svc.spec.container.labels
    running = await cluster.until(lambda: running_n(cluster, "web", 4))
    assert all("fake.health" not in t.spec.container.labels for t in running)
    assert svc.update_status.message.startswith(
        "rollback completed; update rolled back due to failure or early termination of task"
    )
    assert svc.update_status.message.endswith(": task: unhealthy container"), "why it rolled back"


async def test_a_failed_update_pauses_with_its_reason_and_a_new_update_continues(cluster: Cluster) -> None:
    await cluster.add_agent("w1")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=checked(parallelism=1)))
    await cluster.until(lambda: running_n(cluster, "web", 4))
    await update(cluster, label("fake.fail_start", "exec: no such file"))
    svc = await cluster.until(lambda: state_is(cluster, US.PAUSED))
    assert "update paused due to failure or early termination of task" in svc.update_status.message
    assert svc.update_status.message.endswith("exec: no such file")
    await asyncio.sleep(0.3)
    assert len(await cluster.running("web")) >= 3, "a paused update replaces nothing more"
    await update(
        cluster, lambda s: s.container.labels.pop("fake.fail_start")
    )  # fix the spec: the update goes on
    # (it completes; or, when slot 1 had no live task of the bad spec left to replace, nothing was outdated: no update ran)
    await cluster.until(lambda: state_is(cluster, US.COMPLETED, US.UNKNOWN), timeout=20)
    running = await cluster.until(lambda: running_n(cluster, "web", 4))
    assert not any("fake.fail_start" in t.spec.container.labels for t in running)


async def test_manual_rollback_and_force(cluster: Cluster) -> None:
    await cluster.add_agent("w1")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=checked()))
    await cluster.until(lambda: running_n(cluster, "web", 4))
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await update(cluster, lambda s: None, rollback=True)
    assert (
        exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        and "does not have a previous spec" in exc.value.details()
    )
    await update(cluster, label("version", "2"))
    await cluster.until(lambda: state_is(cluster, US.COMPLETED), timeout=20)
    before = {t.id for t in await cluster.running("web")}
    rolled = await update(cluster, lambda s: None, rollback=True)
    assert (
        rolled.update_status.state == US.ROLLBACK_STARTED
        and rolled.update_status.message == "manually requested rollback"
    )
    await cluster.until(lambda: state_is(cluster, US.ROLLBACK_COMPLETED), timeout=20)
    after = await cluster.running("web")
    assert "version" not in after[0].spec.container.labels and not before & {t.id for t in after}
    forced_from = {t.id for t in after}
    await update(cluster, lambda s: setattr(s, "force_update", s.force_update + 1))
    await cluster.until(lambda: state_is(cluster, US.COMPLETED), timeout=20)
    assert not forced_from & {t.id for t in await cluster.running("web")}, "--force replaced every task"


async def test_a_new_manager_resumes_an_update_from_the_store(cluster: Cluster, etcd_server) -> None:  # type: ignore[no-untyped-def]
    await cluster.add_agent("w1")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=checked(parallelism=1)))
    await cluster.until(lambda: running_n(cluster, "web", 4))
    s = await service(cluster)
    await update(cluster, label("version", "2"))
    await cluster.until(lambda: state_is(cluster, US.UPDATING))
    # the leader goes away mid-update; a fresh manager process state (nothing in memory) takes over from etcd
    # once the old one's election lease expired (several managers: test_lab_updates' leader failover)
    for t in cluster.tasks:
        t.cancel()
    await asyncio.gather(*cluster.tasks, return_exceptions=True)
    cluster.tasks.clear()
    other = Manager(
        ManagerConfig(data_dir=cluster.tmp / "m", node_id="m" * 25, listen_addr=cluster.addr, socket_path=str(cluster.tmp / "m.sock"),
                      etcd_endpoints=[etcd_server.endpoint], etcd_tls=etcd_server.tls, heartbeat_period=0.2)
    )  # fmt: skip
    cluster.manager = other
    await cluster.start()
    svc = await cluster.until(lambda: state_is(cluster, US.COMPLETED), timeout=30)
    assert svc.update_status.started_at_ns == (await service(cluster)).update_status.started_at_ns
    assert svc.spec_version == s.spec_version + 1
    running = await cluster.until(lambda: running_n(cluster, "web", 4))
    assert all(t.spec.container.labels["version"] == "2" for t in running)


async def test_a_task_is_starting_until_healthy_and_svc_ls_counts_only_ready_tasks(cluster: Cluster) -> None:
    await cluster.add_agent("w1")
    sick = checked(replicas=2)
    sick.container.labels["fake.health"] = "unhealthy"
    sick.container.healthcheck.retries = 1000  # never declared unhealthy: it stays STARTING
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=sick))

    async def starting() -> bool:
        tasks = await cluster.tasks_of("web")
        return len(tasks) == 2 and all(
            t.status.state == pb.STARTING and t.status.pid for t in tasks
        )  # started, not healthy

    await cluster.until(starting)
    assert await ready_count(cluster) == 0, "svc ls: 0/2 while no task is healthy"
    await update(cluster, lambda s: s.container.labels.pop("fake.health"))
    await cluster.until(lambda: running_n(cluster, "web", 2))
    assert await ready_count(cluster) == 2


async def test_a_slot_whose_restart_policy_gave_up_does_not_hold_the_update_forever(cluster: Cluster) -> None:
    """restart max_attempts 1, failure action continue: each slot's replacement fails twice, the policy gives
    up, and the update goes on slot by slot and completes instead of staying 'updating' on slot 1."""
    await cluster.add_agent("w1")
    s = spec(replicas=2)
    s.restart_policy.delay_ns, s.restart_policy.max_attempts = 50 * MS, 1
    s.update_config.parallelism, s.update_config.failure_action, s.update_config.max_failure_ratio = 1, pb.UpdateConfig.CONTINUE, 0.0  # type: ignore[assignment]
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=s))
    await cluster.until(lambda: running_n(cluster, "web", 2))
    await update(cluster, label("fake.fail_start", "exec: no such file"))
    done = await cluster.until(lambda: state_is(cluster, US.COMPLETED), timeout=20)
    assert done.update_status.message == "update completed"
    tasks = await cluster.tasks_of("web")
    failed = {t.slot for t in tasks if t.spec.container.labels.get("fake.fail_start")}
    assert failed == {1, 2} and not await cluster.running("web"), "both slots were tried, and both gave up"
