"""Opt-in rebalancing on real etcd and gRPC with fake agents: a joining node gets tasks only with --rebalance."""

from __future__ import annotations

from collections import Counter

from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb
from tests.fixtures.cluster import spec


def _spread(tasks: list[pb.Task], names: dict[str, str]) -> dict[str, int]:
    return dict(Counter(names[t.node_id] for t in tasks))


async def test_a_joining_node_takes_tasks_of_rebalancing_services_only(cluster):  # noqa: F811
    w1 = await cluster.add_agent("w1")
    w2 = await cluster.add_agent("w2")
    moving = spec(name="moving", replicas=4, rebalance=True)
    moving.update_config.parallelism = 1
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=moving))
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=spec(name="staying", replicas=4)))

    async def running(name, n):
        r = await cluster.running(name)
        return len(r) == n and r

    await cluster.until(lambda: running("moving", 4))
    staying_before = {t.id for t in await cluster.until(lambda: running("staying", 4))}
    names = {w1.node_id: "w1", w2.node_id: "w2"}
    assert sorted(_spread(await cluster.running("moving"), names).values()) == [2, 2]

    w3 = await cluster.add_agent("w3")
    names[w3.node_id] = "w3"
    seen_moving_at_once = 0

    async def even():
        nonlocal seen_moving_at_once
        tasks = await cluster.tasks_of("moving")
        in_flight = [t for t in tasks if t.desired_state == pb.RUNNING and t.status.state < pb.RUNNING]
        seen_moving_at_once = max(seen_moving_at_once, len(in_flight))
        live = [t for t in tasks if t.desired_state == pb.RUNNING and t.status.state == pb.RUNNING]
        spread = _spread(live, names)
        return len(live) == 4 and not in_flight and sorted(spread.values()) == [1, 1, 2] and spread

    spread = await cluster.until(even, timeout=20)
    assert spread["w3"] == 1
    assert seen_moving_at_once <= 1, "at most the update parallelism of moves at a time"

    async def old_stopped():
        moved = [t for t in await cluster.tasks_of("moving") if t.desired_state == pb.SHUTDOWN]
        return all(t.status.state == pb.SHUTDOWN for t in moved) and moved

    moved = await cluster.until(old_stopped)
    assert len(moved) == 1, "one task moved; its old copy stopped"
    assert sorted(t.slot for t in await cluster.running("moving")) == [1, 2, 3, 4]

    # the service without --rebalance kept its tasks where they were: Swarm's behaviour (moby#24103)
    staying = await cluster.tasks_of("staying")
    assert {t.id for t in staying} == staying_before
    assert "w3" not in _spread(staying, names)

    # turning it on later moves its tasks too
    svc = (await cluster.control.GetService(cpb.GetServiceRequest(service_id="staying"))).service
    on = pb.ServiceSpec()
    on.CopyFrom(svc.spec)
    on.rebalance = True
    await cluster.control.UpdateService(cpb.UpdateServiceRequest(service_id=svc.id, version=svc.meta.version, spec=on))

    async def staying_even():
        live = await cluster.running("staying")
        spread = _spread(live, names)
        return len(live) == 4 and sorted(spread.values()) == [1, 1, 2] and spread

    await cluster.until(staying_even, timeout=20)
