"""Which spec changes replace running tasks, when a task counts as ready, and the service after an update or rollback."""

from __future__ import annotations

from shoal import rollout
from shoal.proto import types_pb2 as pb
from shoal.views import new_task


def svc() -> pb.Service:
    s = pb.Service(id="s", spec_version=3)
    s.spec.name = "web"
    s.spec.replicas = 2
    s.spec.container.image = "app:1"
    return s


def test_container_ports_networks_and_force_make_a_task_outdated() -> None:
    for change in (
        lambda s: setattr(s.container, "image", "app:2"),
        lambda s: s.container.env.append("A=1"),
        lambda s: s.ports.add(target_port=80),
        lambda s: s.networks.add(target="n1"),
        lambda s: s.placement.constraints.append("node.role==worker"),
        lambda s: setattr(s, "force_update", 1),
        lambda s: setattr(s.resources.limits, "memory_bytes", 64 << 20),
    ):
        service = svc()
        task = new_task(service, 1)
        change(service.spec)
        service.spec_version += 1
        assert rollout.outdated(service, task)


def test_name_labels_replicas_and_policies_leave_running_tasks_alone() -> None:
    service = svc()
    task = new_task(service, 1)
    service.spec.labels["tier"] = "web"
    service.spec.replicas = 9
    service.spec.update_config.parallelism = 4
    service.spec.rollback_config.order = pb.UpdateConfig.START_FIRST
    service.spec.rebalance = True
    service.spec_version += 1
    assert not rollout.outdated(service, task)


def test_a_memo_answers_each_spec_version_once_and_keeps_versions_apart() -> None:
    service = svc()
    v3 = [new_task(service, slot) for slot in (1, 2)]
    service.spec.labels["tier"] = "web"  # v4: nothing a task depends on
    service.spec_version = 4
    v4 = new_task(service, 3)
    service.spec.container.image = "app:2"  # v5: a new image
    service.spec_version = 5
    memo: dict[int, bool] = {}
    assert rollout.outdated(service, v3[0], memo=memo) and memo == {3: True}
    v3[1].spec.container.image = "not compared again"  # same version, same spec: the memo answers
    assert rollout.outdated(service, v3[1], memo=memo)
    assert rollout.outdated(service, v4, memo=memo) and memo == {3: True, 4: True}
    service.spec.container.image = "app:1"  # v6: back to the image of v3 and v4
    service.spec_version = 6
    fresh: dict[int, bool] = {}
    assert not rollout.outdated(service, v3[0], memo=fresh) and not rollout.outdated(service, v4, memo=fresh)
    assert fresh == {3: False, 4: False}


def test_ready_needs_running_and_healthy_when_checked() -> None:
    plain, checked = pb.ServiceSpec(), pb.ServiceSpec()
    checked.container.healthcheck.test[:] = ["CMD", "true"]
    disabled = pb.ServiceSpec()
    disabled.container.healthcheck.test[:] = ["NONE"]
    running = pb.TaskStatus(state=pb.RUNNING)
    assert rollout.ready(plain, running) and rollout.ready(disabled, running)
    assert not rollout.ready(checked, running)
    assert not rollout.ready(checked, pb.TaskStatus(state=pb.RUNNING, health=pb.HEALTH_UNHEALTHY))
    assert rollout.ready(checked, pb.TaskStatus(state=pb.RUNNING, health=pb.HEALTH_HEALTHY))
    assert not rollout.ready(plain, pb.TaskStatus(state=pb.STARTING))


def test_an_update_keeps_the_previous_spec_only_when_the_spec_changed() -> None:
    service = svc()
    service.update_status.state = pb.UpdateStatus.PAUSED
    new = pb.ServiceSpec()
    new.CopyFrom(service.spec)
    new.container.image = "app:2"
    after = rollout.respecced(service, new, 5)
    assert after.previous_spec.container.image == "app:1" and after.spec_version == 4
    assert not after.HasField("update_status"), "a new update (or a resumed paused one) starts afresh"
    again = rollout.respecced(after, after.spec, 6)  # `svc update` without a change: continue
    assert again.previous_spec.container.image == "app:1" and again.spec_version == 5


def test_a_rollback_swaps_the_specs_and_starts_now() -> None:
    service = svc()
    service.previous_spec.CopyFrom(service.spec)
    service.spec.container.image = "app:2"
    rb = rollout.rolled_back(service, 7, "manually requested rollback")
    assert (rb.spec.container.image, rb.previous_spec.container.image) == ("app:1", "app:2")
    assert rb.spec_version == 4 and rb.update_status.started_at_ns == 7
    assert rollout.state_word(rb.update_status) == "rollback_started"
