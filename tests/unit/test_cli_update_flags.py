"""`svc update` task-template flags, --force, --rollback / `svc rollback`, refusals, and the wait on a rolling update."""

from __future__ import annotations

import pytest

from shoal.cli import progress
from shoal.proto import control_pb2, types_pb2
from tests.fixtures.cli_fakes import FakeStub, run

S = types_pb2.ServiceSpec
US = types_pb2.UpdateStatus


class RollingStub(FakeStub):
    """The fake manager, with docker's rollback request and the update states a supervisor writes."""

    def __init__(self) -> None:
        super().__init__()
        self.states: list[tuple[int, str]] = []  # update states the service goes through, one per poll
        self.bump_between_reads: S | None = None  # a spec another client writes right after the first read

    def UpdateService(self, req: control_pb2.UpdateServiceRequest) -> control_pb2.UpdateServiceResponse:
        svc = self.services[req.service_id]
        if req.rollback:
            self._record("UpdateService", req)
            prev = S()
            prev.CopyFrom(svc.previous_spec)
            svc.previous_spec.CopyFrom(svc.spec)
            svc.spec.CopyFrom(prev)
            svc.meta.version += 1
            svc.update_status.CopyFrom(US(state=US.ROLLBACK_STARTED, message="manually requested rollback"))
            return control_pb2.UpdateServiceResponse(service=svc)
        return super().UpdateService(req)

    def GetService(self, req: control_pb2.GetServiceRequest) -> control_pb2.GetServiceResponse:
        resp = super().GetService(req)
        svc = self.services[resp.service.id]
        if self.bump_between_reads is not None:
            svc.spec.CopyFrom(self.bump_between_reads)
            svc.meta.version += 1
            self.bump_between_reads = None
        elif self.states and len(self.called("UpdateService")):
            state, msg = self.states.pop(0)
            svc.update_status.CopyFrom(US(state=state, message=msg))  # type: ignore[arg-type]
        return resp


@pytest.fixture
def fake() -> RollingStub:
    f = RollingStub()
    web = S(name="web", replicas=2, container=types_pb2.ContainerSpec(image="app:1", env=["A=1", "B=2"]))
    web.container.labels["keep"] = "1"
    web.placement.preferences.add(spread="node.labels.zone")
    web.container.healthcheck.test[:] = ["CMD-SHELL", "true"]
    svc = f.add_service(web)
    prev = S()
    prev.CopyFrom(web)
    prev.container.image = "app:0"
    svc.previous_spec.CopyFrom(prev)
    f.add_service(S(name="job", mode=S.REPLICATED_JOB, container=types_pb2.ContainerSpec(image="app:1")))
    return f


def _sent(fake: FakeStub) -> S:
    return fake.called("UpdateService")[-1].spec


def test_task_template_flags_change_only_what_they_name(fake: RollingStub) -> None:
    r = run(
        fake, "svc", "update", "-d", "--env-add", "B=3", "--env-add", "C=4", "--env-rm", "A",
        "--container-label-add", "x=y", "--container-label-rm", "keep",
        "--placement-pref-rm", "spread=node.labels.zone", "--placement-pref-add", "spread=node.labels.rack",
        "--limit-cpu", "0.5", "--limit-memory", "64M", "--limit-pids", "100", "--reserve-cpu", "0.25", "--reserve-memory", "32M",
        "--restart-condition", "on-failure", "--restart-delay", "2s", "--restart-max-attempts", "3", "--restart-window", "1m",
        "--rollback-parallelism", "0", "--rollback-order", "start-first", "--rollback-failure-action", "continue", "--rollback-monitor", "1s",
        "--health-interval", "1s", "--health-retries", "2", "web",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    s = _sent(fake)
    assert list(s.container.env) == ["B=3", "C=4"]
    assert dict(s.container.labels) == {"x": "y"}
    assert [p.spread for p in s.placement.preferences] == ["node.labels.rack"]
    lim, res = s.resources.limits, s.resources.reservations
    assert (lim.nano_cpus, lim.memory_bytes, lim.pids, res.nano_cpus, res.memory_bytes) == (
        5 * 10**8,
        64 << 20,
        100,
        25 * 10**7,
        32 << 20,
    )
    rp = s.restart_policy
    assert (rp.condition, rp.delay_ns, rp.max_attempts, rp.window_ns) == (
        types_pb2.RestartPolicy.ON_FAILURE,
        2 * 10**9,
        3,
        60 * 10**9,
    )
    rc = s.rollback_config
    assert (
        rc.HasField("parallelism") and rc.parallelism == 0 and rc.order == types_pb2.UpdateConfig.START_FIRST
    )
    assert rc.failure_action == types_pb2.UpdateConfig.CONTINUE and rc.monitor_ns == 10**9
    hc = s.container.healthcheck
    assert list(hc.test) == ["CMD-SHELL", "true"] and hc.interval_ns == 10**9 and hc.retries == 2


def test_no_healthcheck_and_a_new_health_cmd(fake: RollingStub) -> None:
    assert run(fake, "svc", "update", "-d", "--no-healthcheck", "web").exit_code == 0
    assert list(_sent(fake).container.healthcheck.test) == ["NONE"]
    assert run(fake, "svc", "update", "-d", "--health-cmd", "curl -f localhost", "web").exit_code == 0
    assert list(_sent(fake).container.healthcheck.test) == ["CMD-SHELL", "curl -f localhost"]


def test_force_bumps_the_counter_each_time(fake: RollingStub) -> None:
    assert run(fake, "svc", "update", "-d", "--force", "web").exit_code == 0
    assert run(fake, "svc", "update", "-d", "--force", "web").exit_code == 0
    assert _sent(fake).force_update == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--update-parallelism", "2", "job"], "--update-parallelism cannot be used with a job"),
        (["--rollback-order", "start-first", "job"], "--rollback-order cannot be used with a job"),
        (["--rollback", "--image", "app:2", "web"], "--rollback cannot be combined with --image"),
        (["--limit-memory", "12Q", "web"], 'invalid argument "12Q" for "--limit-memory" flag'),
        (["--env-add", "=x", "web"], 'invalid argument "=x" for "--env-add" flag: variable name is empty'),
        (["--placement-pref-add", "binpack=x", "web"], "unsupported placement preference"),
        (
            ["--no-healthcheck", "--health-cmd", "true", "web"],
            "--no-healthcheck conflicts with --health-* options",
        ),
        (["--rollback-max-failure-ratio", "2", "web"], "must be between 0 and 1"),
        (["--replicas", "3", "--restart-delay", "soon", "web"], '"--restart-delay"'),
    ],
)
def test_bad_input_is_one_error_and_nothing_is_written(
    fake: RollingStub, args: list[str], message: str
) -> None:
    r = run(fake, "svc", "update", "-d", *args)
    assert r.exit_code != 0 and message in r.output, r.output
    assert not fake.called("UpdateService"), "nothing written"


def test_rollback_flag_and_command_send_a_rollback_request(fake: RollingStub) -> None:
    r = run(fake, "svc", "update", "-d", "--rollback", "web")
    assert r.exit_code == 0, r.output
    assert fake.called("UpdateService")[-1].rollback is True
    r = run(fake, "svc", "rollback", "-d", "web")
    assert r.exit_code == 0 and r.stdout.strip() == "web", r.output
    assert len([c for c in fake.called("UpdateService") if c.rollback]) == 2


def test_a_concurrent_spec_change_is_refused_not_merged(fake: RollingStub) -> None:
    from tests.fixtures.cli_fakes import FakeRpcError

    other = S()
    other.CopyFrom(fake.services[next(iter(fake.services))].spec)
    other.container.image = "someone-else:9"
    fake.fail["UpdateService"] = [
        FakeRpcError(__import__("grpc").StatusCode.FAILED_PRECONDITION, "update out of sequence: x")
    ]
    fake.bump_between_reads = None
    # the first write loses the race; on re-reading, the spec was changed by someone else
    orig_get = fake.GetService

    def get(req):  # type: ignore[no-untyped-def]
        resp = orig_get(req)
        if fake.called("UpdateService"):
            resp.service.spec.CopyFrom(other)
        return resp

    fake.GetService = get  # type: ignore[method-assign]
    r = run(fake, "svc", "update", "-d", "--image", "app:2", "web")
    assert (
        r.exit_code == 1 and "update out of sequence: service web was changed by another update" in r.output
    ), r.output
    assert len(fake.called("UpdateService")) == 1, "not retried over someone else's change"


def test_a_conflict_from_the_update_state_alone_is_retried(fake: RollingStub) -> None:
    from tests.fixtures.cli_fakes import FakeRpcError

    fake.fail["UpdateService"] = [
        FakeRpcError(__import__("grpc").StatusCode.FAILED_PRECONDITION, "update out of sequence: x")
    ]
    r = run(fake, "svc", "update", "-d", "--image", "app:2", "web")
    assert r.exit_code == 0, r.output
    assert len(fake.called("UpdateService")) == 2 and _sent(fake).container.image == "app:2"


@pytest.mark.timeout(10)
def test_waiting_on_an_update_that_pauses_exits_with_the_reason(
    fake: RollingStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress.time, "sleep", lambda _s: None)
    fake.auto_run = False
    fake.states = [
        (US.UPDATING, "update in progress"),
        (US.PAUSED, "update paused due to failure or early termination of task t1: boom"),
    ]
    r = run(fake, "svc", "update", "--image", "app:2", "web")
    assert r.exit_code == 1
    assert (
        "service update paused: update paused due to failure or early termination of task t1: boom"
        in r.output
    )


@pytest.mark.timeout(10)
def test_waiting_on_an_update_that_rolled_back_shows_the_rollback_and_fails(
    fake: RollingStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress.time, "sleep", lambda _s: None)
    why = "update rolled back due to failure or early termination of task t1: task: unhealthy container"
    fake.states = [
        (US.UPDATING, "update in progress"),
        (US.ROLLBACK_STARTED, why),
        (US.ROLLBACK_COMPLETED, "rollback completed"),
    ]
    r = run(fake, "svc", "update", "--image", "app:2", "web")
    assert r.exit_code == 1, r.output
    assert f"rollback: {why}" in r.output and "service rolled back: rollback completed" in r.output


@pytest.mark.timeout(10)
def test_svc_rollback_waits_until_the_rollback_completed(
    fake: RollingStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress.time, "sleep", lambda _s: None)
    fake.states = [
        (US.ROLLBACK_STARTED, "manually requested rollback"),
        (US.ROLLBACK_COMPLETED, "rollback completed"),
    ]
    for t in fake.tasks:
        t.status.health = types_pb2.HEALTH_HEALTHY
        t.spec.CopyFrom(fake.services[t.service_id].previous_spec)
    r = run(fake, "svc", "rollback", "web")
    assert r.exit_code == 0, r.output
    out = r.stdout.splitlines()
    assert out[0] == "web" and "rollback: manually requested rollback" in out
    assert (
        "overall progress: rolling back update: 2 out of 2 tasks" in out
        and out[-1] == "verify: Service converged"
    )


@pytest.mark.timeout(10)
def test_an_update_that_completes_with_its_tasks_failing_ends_the_wait_as_dockers(
    fake: RollingStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress.time, "sleep", lambda _s: None)
    fake.auto_run = False  # the tasks never run (an image that exits at once)
    fake.states = [(US.UPDATING, "update in progress"), (US.COMPLETED, "update completed")]
    r = run(fake, "svc", "update", "--update-failure-action", "continue", "--image", "app:2", "web")
    assert r.exit_code == 0, r.output
    assert "verify: Service converged" not in r.output and "overall progress: 0 out of 2 tasks" in r.output
