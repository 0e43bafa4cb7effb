"""Health checks through the cluster (real etcd and gRPC, fake executor answering the probes)."""

from __future__ import annotations

from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb
from tests.fixtures.cluster import spec


def checked(health: str) -> pb.ServiceSpec:
    s = spec(replicas=1, labels={"fake.health": health})
    s.container.healthcheck.test[:] = ["CMD-SHELL", "probe"]
    s.container.healthcheck.interval_ns = s.container.healthcheck.start_interval_ns = 50_000_000
    s.container.healthcheck.retries = 2
    s.restart_policy.delay_ns = 50_000_000
    return s


async def test_healthy_task_reports_healthy(cluster):
    await cluster.add_agent("w1")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=checked("healthy")))

    async def healthy():
        r = await cluster.running("web")
        return r and r[0].status.health == pb.HEALTH_HEALTHY

    await cluster.until(healthy)


async def test_unhealthy_task_is_failed_and_replaced(cluster):
    await cluster.add_agent("w1")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=checked("unhealthy")))

    async def replaced():
        tasks = await cluster.tasks_of("web")
        failed = [t for t in tasks if t.status.state == pb.FAILED]
        return len(failed) >= 2 and failed

    failed = await cluster.until(replaced)
    assert failed[0].status.err == "task: unhealthy container"
