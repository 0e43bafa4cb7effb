"""`shoal svc create`: docker's flags become the right ServiceSpec; bad input never reaches the manager."""

from __future__ import annotations

import grpc
import pytest

from shoal.cli.service_create import build_spec
from shoal.cli.service_opts import FlagError
from shoal.proto import types_pb2
from tests.fixtures.cli_fakes import FakeRpcError, FakeStub, run

GiB = 1 << 30


def created_spec(*args: str) -> types_pb2.ServiceSpec:
    fake = FakeStub()
    result = run(fake, "svc", "create", "-d", *args)
    assert result.exit_code == 0, result.output
    (req,) = fake.called("CreateService")
    return req.spec


def test_all_flags_map_onto_the_spec() -> None:
    spec = created_spec(
        "--name", "web", "--replicas", "3", "-e", "A=1", "--env", "B=two words", "-w", "/srv", "-u", "1000:1000",
        "--hostname", "h1", "-l", "tier=front", "-l", "bare", "--container-label", "c=1",
        "--entrypoint", "/bin/sh -c", "--limit-cpu", "1.5", "--limit-memory", "512m", "--limit-pids", "100",
        "--reserve-cpu", "0.25", "--reserve-memory", "1g", "--constraint", "node.role==worker",
        "--constraint", "node.labels.zone!=east", "--placement-pref", "spread=node.labels.zone",
        "--replicas-max-per-node", "2", "--restart-condition", "on-failure", "--restart-delay", "1s",
        "--restart-max-attempts", "4", "--restart-window", "2m", "--update-parallelism", "2",
        "--update-delay", "10s", "--update-failure-action", "rollback", "--update-monitor", "30s",
        "--update-max-failure-ratio", "0.2", "--update-order", "start-first", "--rollback-parallelism", "0",
        "--rollback-failure-action", "continue", "--rollback-order", "stop-first", "--rollback-monitor", "1s",
        "--health-cmd", "wget -q localhost", "--health-interval", "5s", "--health-timeout", "2s",
        "--health-retries", "3", "--health-start-period", "1m", "--health-start-interval", "500ms",
        "-p", "8080:80", "-p", "published=53,target=53,protocol=udp,mode=host", "--stop-grace-period", "30s",
        "--init", "busybox", "httpd", "-f",
    )  # fmt: skip
    c = spec.container
    assert spec.name == "web" and spec.replicas == 3 and spec.mode == types_pb2.ServiceSpec.REPLICATED
    assert dict(spec.labels) == {"tier": "front", "bare": ""}
    assert c.image == "busybox" and list(c.args) == ["httpd", "-f"] and list(c.command) == ["/bin/sh", "-c"]
    assert list(c.env) == ["A=1", "B=two words"]
    assert (c.dir, c.user, c.hostname, c.init) == ("/srv", "1000:1000", "h1", True)
    assert dict(c.labels) == {"c": "1"}
    assert c.stop_grace_period_ns == 30 * 10**9
    hc = c.healthcheck
    assert list(hc.test) == ["CMD-SHELL", "wget -q localhost"]
    assert (hc.interval_ns, hc.timeout_ns, hc.retries) == (5 * 10**9, 2 * 10**9, 3)
    assert (hc.start_period_ns, hc.start_interval_ns) == (60 * 10**9, 500 * 10**6)
    r = spec.resources
    assert (r.limits.nano_cpus, r.limits.memory_bytes, r.limits.pids) == (1_500_000_000, 512 << 20, 100)
    assert (r.reservations.nano_cpus, r.reservations.memory_bytes) == (250_000_000, GiB)
    assert list(spec.placement.constraints) == ["node.role==worker", "node.labels.zone!=east"]
    assert [p.spread for p in spec.placement.preferences] == ["node.labels.zone"]
    assert spec.placement.max_replicas_per_node == 2
    rp = spec.restart_policy
    assert rp.condition == types_pb2.RestartPolicy.ON_FAILURE
    assert (rp.delay_ns, rp.max_attempts, rp.window_ns) == (10**9, 4, 120 * 10**9)
    u = spec.update_config
    assert (u.parallelism, u.delay_ns, u.monitor_ns, u.max_failure_ratio) == (2, 10 * 10**9, 30 * 10**9, 0.2)
    assert u.failure_action == types_pb2.UpdateConfig.ROLLBACK and u.order == types_pb2.UpdateConfig.START_FIRST
    rb = spec.rollback_config
    assert rb.HasField("parallelism") and rb.parallelism == 0
    assert rb.failure_action == types_pb2.UpdateConfig.CONTINUE and rb.monitor_ns == 10**9
    p1, p2 = spec.ports
    assert (p1.published_port, p1.target_port, p1.protocol, p1.publish_mode) == (8080, 80, 0, 0)
    assert (p2.published_port, p2.target_port) == (53, 53)
    assert p2.protocol == types_pb2.PortConfig.UDP and p2.publish_mode == types_pb2.PortConfig.HOST


def test_defaults_leave_optional_fields_unset_for_the_manager() -> None:
    spec = created_spec("nginx")
    assert not spec.HasField("replicas")
    assert not spec.restart_policy.HasField("delay_ns")
    assert not spec.update_config.HasField("parallelism") and not spec.update_config.HasField("monitor_ns")
    assert not spec.container.HasField("stop_grace_period_ns")
    assert list(spec.container.args) == [] and list(spec.container.healthcheck.test) == []


def test_everything_after_the_image_is_the_command_verbatim() -> None:
    spec = created_spec("--name", "x", "busybox", "sh", "-c", "echo hi", "--not-an-option", "--name", "y")
    assert spec.name == "x"
    assert list(spec.container.args) == ["sh", "-c", "echo hi", "--not-an-option", "--name", "y"]


def test_modes_and_jobs() -> None:
    assert created_spec("--mode", "global", "nginx").mode == types_pb2.ServiceSpec.GLOBAL
    spec = created_spec("--mode", "replicated-job", "--replicas", "5", "--max-concurrent", "2", "busybox", "true")
    assert (spec.mode, spec.replicas, spec.max_concurrent) == (types_pb2.ServiceSpec.REPLICATED_JOB, 5, 2)


def test_bare_env_name_takes_the_shell_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_SHELL", "v1")
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    spec = created_spec("-e", "FROM_SHELL", "-e", "NOT_SET_ANYWHERE", "nginx")
    assert list(spec.container.env) == ["FROM_SHELL=v1", "NOT_SET_ANYWHERE"]


def test_no_healthcheck() -> None:
    assert list(created_spec("--no-healthcheck", "nginx").container.healthcheck.test) == ["NONE"]


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--limit-memory", "12Q"),
        ("--reserve-memory", "lots"),
        ("--limit-cpu", "two"),
        ("--restart-delay", "5 minutes"),
        ("--update-delay", "10"),
        ("--health-interval", "1x"),
        ("--stop-grace-period", "soon"),
        ("--replicas", "three"),
        ("--limit-pids", "-1"),
        ("--update-max-failure-ratio", "2"),
        ("--publish", "80:http"),
        ("--placement-pref", "pack=node.labels.x"),
        ("--security-opt", "apparmor=unconfined"),
        ("--security-opt", "seccomp=/no/such/profile.json"),
    ],
)
def test_bad_value_is_one_line_and_sends_nothing(flag: str, value: str) -> None:
    fake = FakeStub()
    result = run(fake, "svc", "create", flag, value, "nginx")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert flag in lines[0] and value in lines[0] and lines[0].startswith("Error: ")
    assert fake.calls == [] and result.connects == []


def test_security_opt_carries_the_seccomp_setting_to_the_tasks(tmp_path) -> None:
    assert created_spec("nginx").container.seccomp_profile == "", "the default profile"
    assert created_spec("--security-opt", "seccomp=unconfined", "nginx").container.seccomp_profile == "unconfined"
    profile = tmp_path / "p.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    spec = created_spec("--security-opt", f"seccomp={profile}", "nginx")
    assert spec.container.seccomp_profile == '{"defaultAction": "SCMP_ACT_ALLOW"}', "the file is read on the client"
    profile.write_text('{"defaultAction": "SCMP_ACT_PERHAPS"}')
    fake = FakeStub()
    result = run(fake, "svc", "create", "--security-opt", f"seccomp={profile}", "nginx")
    assert result.exit_code == 2 and "defaultAction" in result.output and fake.calls == []


def test_unknown_flag_is_a_usage_error() -> None:
    result = run(None, "svc", "create", "--bogus", "nginx")
    assert result.exit_code == 2
    assert "No such option" in result.output and "--bogus" in result.output


def test_missing_image_is_a_usage_error() -> None:
    assert run(None, "svc", "create", "--name", "x").exit_code == 2


def test_conflicting_flags_are_refused_locally() -> None:
    r = run(None, "svc", "create", "--mode", "global", "--replicas", "2", "nginx")
    assert r.exit_code == 2 and "replicas can only be used with replicated or replicated-job mode" in r.output
    r = run(None, "svc", "create", "--no-healthcheck", "--health-cmd", "true", "nginx")
    assert r.exit_code == 2 and "--no-healthcheck conflicts" in r.output
    r = run(None, "svc", "create", "--max-concurrent", "2", "nginx")
    assert r.exit_code == 2


def test_negative_replicas_are_sent_and_the_server_error_is_shown() -> None:
    fake = FakeStub()
    fake.fail["CreateService"] = [FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "replicas: must be >= 0, got -1")]
    result = run(fake, "svc", "create", "--replicas", "-1", "nginx")
    assert fake.called("CreateService")[0].spec.replicas == -1
    assert result.exit_code == 1
    assert result.output.strip() == "Error: replicas: must be >= 0, got -1"


def test_create_prints_the_full_id_then_waits_for_convergence() -> None:
    fake = FakeStub()
    result = run(fake, "svc", "create", "--name", "web", "--replicas", "2", "nginx")
    assert result.exit_code == 0, result.output
    (sid,) = fake.services
    lines = result.stdout.splitlines()
    assert lines[0] == sid
    assert lines[1] == "overall progress: 2 out of 2 tasks"
    assert lines[2].startswith("1/2: running   [=====") and lines[3].startswith("2/2: running")
    assert lines[-1] == "verify: Service converged"


def test_quiet_and_detach() -> None:
    fake = FakeStub()
    r = run(fake, "svc", "create", "-q", "nginx")
    assert r.exit_code == 0 and r.stdout.splitlines() == list(fake.services)
    fake2 = FakeStub()
    r = run(fake2, "svc", "create", "-d", "nginx")
    assert r.stdout.splitlines() == list(fake2.services) and not fake2.called("ListTasks")


def test_build_spec_is_usable_without_click() -> None:
    spec = build_spec("nginx", ["-g", "daemon off;"], {"name": "n", "publish": ["8080-8081:80-81/udp"]})
    assert [(p.published_port, p.target_port) for p in spec.ports] == [(8080, 80), (8081, 81)]
    with pytest.raises(FlagError, match='invalid argument "1q" for "--limit-memory" flag'):
        build_spec("nginx", [], {"limit_memory": "1q"})
