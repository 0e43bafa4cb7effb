"""depends_on through the cluster (real etcd and gRPC, fake executor): a dependent's tasks wait, then run."""

from __future__ import annotations

from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb
from tests.fixtures.cluster import spec

HEALTHY = pb.ServiceDependency.HEALTHY
DONE = pb.ServiceDependency.COMPLETED_SUCCESSFULLY


def checked(name: str, health: str) -> pb.ServiceSpec:
    s = spec(name=name, replicas=1, labels={"fake.health": health})
    s.container.healthcheck.test[:] = ["CMD-SHELL", "probe"]
    s.container.healthcheck.interval_ns = s.container.healthcheck.start_interval_ns = 50_000_000
    s.container.healthcheck.retries = 1000  # stays unhealthy without being replaced during the test
    return s


def dependent(*deps: tuple[str, int]) -> pb.ServiceSpec:
    s = spec(name="app", replicas=2)
    for name, cond in deps:
        s.depends_on.add(service=name, condition=cond)
    return s


async def test_a_dependent_waits_for_a_healthy_dependency_and_says_why(cluster):
    await cluster.add_agent("w1")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=checked("db", "unhealthy")))
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=dependent(("db", HEALTHY))))

    async def held():
        tasks = await cluster.tasks_of("app")
        return len(tasks) == 2 and all(
            t.status.state == pb.PENDING and t.status.err == "waiting for db: service_healthy" for t in tasks
        )

    await cluster.until(held)
    assert not await cluster.running("app")


async def test_a_dependent_starts_once_its_dependency_is_healthy(cluster):
    await cluster.add_agent("w1")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=dependent(("db", HEALTHY))))

    async def no_such_service():
        tasks = await cluster.tasks_of("app")
        return tasks and all(t.status.err.endswith("(no such service yet)") for t in tasks)

    await cluster.until(no_such_service)
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=checked("db", "healthy")))

    async def both_running():
        return len(await cluster.running("app")) == 2

    await cluster.until(both_running)
    db = await cluster.running("db")
    assert db and db[0].status.health == pb.HEALTH_HEALTHY


async def test_a_dependent_waits_for_a_job_to_complete_successfully(cluster):
    await cluster.add_agent("w1")
    job = spec(name="migrate", replicas=1, labels={"fake.run_s": "0.5"}, mode=pb.ServiceSpec.REPLICATED_JOB)
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=job))
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=dependent(("migrate", DONE))))

    async def app_running():
        return len(await cluster.running("app")) == 2

    await cluster.until(app_running)
    (done,) = await cluster.tasks_of("migrate")
    app = await cluster.running("app")
    assert done.status.state == pb.COMPLETE
    assert all(t.meta.created_at_ns > 0 for t in app)
    assert min(t.status.timestamp_ns for t in app) >= done.status.timestamp_ns  # started after the job ended


async def test_a_failed_job_keeps_its_dependents_waiting(cluster):
    await cluster.add_agent("w1")
    job = spec(name="migrate", replicas=1, labels={"fake.run_s": "0.1", "fake.exit_code": "3"}, mode=pb.ServiceSpec.REPLICATED_JOB)
    job.restart_policy.condition = pb.RestartPolicy.NONE
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=job))
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=dependent(("migrate", DONE))))

    async def failed_and_held():
        (t,) = await cluster.tasks_of("migrate") or [None]
        app = await cluster.tasks_of("app")
        return t is not None and t.status.state == pb.FAILED and len(app) == 2 and all(
            a.status.err == "waiting for migrate: service_completed_successfully" for a in app
        )

    await cluster.until(failed_and_held)


async def test_a_service_cannot_depend_on_itself(cluster):
    import grpc
    import pytest

    s = dependent(("app", HEALTHY))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await cluster.control.CreateService(cpb.CreateServiceRequest(spec=s))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cannot depend on itself" in err.value.details()
    assert not (await cluster.control.ListServices(cpb.ListServicesRequest())).services
