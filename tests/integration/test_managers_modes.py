"""Global services and jobs on real etcd and gRPC with fake agents."""

from __future__ import annotations

from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb
from tests.fixtures.cluster import spec


def _global(name="agent", job=False, **kw) -> pb.ServiceSpec:
    s = spec(name=name, replicas=0, **kw)
    s.ClearField("replicas")
    s.mode = pb.ServiceSpec.GLOBAL_JOB if job else pb.ServiceSpec.GLOBAL
    return s


async def test_global_service_follows_nodes(cluster):  # noqa: F811
    await cluster.add_agent("w1")
    await cluster.add_agent("w2")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=_global()))

    async def per_node(n):
        r = await cluster.running("agent")
        return len(r) == n and len({t.node_id for t in r}) == n and all(t.slot == 0 for t in r) and r

    await cluster.until(lambda: per_node(2))
    await cluster.add_agent("w3")
    await cluster.until(lambda: per_node(3))
    summ = (await cluster.control.ListServices(cpb.ListServicesRequest())).summaries
    assert [(s.running, s.desired) for s in summ.values()] == [(3, 3)]
    await cluster.kill_agent("w3")
    await cluster.until(lambda: per_node(2))


async def test_replicated_job_runs_to_completion_with_max_concurrent(cluster):  # noqa: F811
    await cluster.add_agent("w1")
    await cluster.add_agent("w2")
    s = spec(name="batch", replicas=3, labels={"fake.run_s": "0.2"})
    s.mode = pb.ServiceSpec.REPLICATED_JOB
    s.max_concurrent = 1
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=s))
    seen_concurrent = 0

    async def complete():
        nonlocal seen_concurrent
        tasks = await cluster.tasks_of("batch")
        seen_concurrent = max(seen_concurrent, sum(1 for t in tasks if t.status.state == pb.RUNNING))
        done = [t for t in tasks if t.status.state == pb.COMPLETE]
        # the orchestrator marks a finished job task's desired state COMPLETE after it sees the status
        return len(done) == 3 and all(t.desired_state == pb.COMPLETE for t in done) and done

    done = await cluster.until(complete, timeout=15)
    assert sorted(t.slot for t in done) == [1, 2, 3]
    assert seen_concurrent <= 1
    tasks = await cluster.tasks_of("batch")
    assert len(tasks) == 3, "a completed job is not restarted"


async def test_global_job_runs_once_per_node(cluster):  # noqa: F811
    await cluster.add_agent("w1")
    await cluster.add_agent("w2")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=_global("once", job=True, labels={"fake.run_s": "0.05"})))

    async def complete():
        tasks = await cluster.tasks_of("once")
        return len([t for t in tasks if t.status.state == pb.COMPLETE]) == 2 and tasks

    tasks = await cluster.until(complete)
    assert len(tasks) == 2 and len({t.node_id for t in tasks}) == 2
