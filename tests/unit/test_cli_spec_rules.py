"""The CLI applies the manager's spec rules while it reads flags: the same rule and the same words
as `shoal.spec`, refused before anything is sent, and a spec it builds passes the manager's check."""

from __future__ import annotations

import pytest

from shoal import spec
from shoal.cli.service_create import build_spec
from shoal.proto import types_pb2
from tests.fixtures.cli_fakes import FakeStub, run

S = types_pb2.ServiceSpec


def message(field: str) -> str:
    return spec.MODE_ONLY[field][1]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--mode", "global", "--replicas", "2"], "replicas"),
        (["--mode", "global-job", "--replicas", "1"], "replicas"),
        (["--mode", "replicated", "--max-concurrent", "2"], "max_concurrent"),
        (["--mode", "global", "--max-concurrent", "2"], "max_concurrent"),
        (["--mode", "replicated-job", "--rebalance"], "rebalance"),
        (["--mode", "global", "--rebalance"], "rebalance"),
    ],
)
def test_create_refuses_a_flag_the_mode_does_not_take_with_the_managers_message(args: list[str], field: str):
    fake = FakeStub()
    r = run(fake, "svc", "create", "-d", *args, "nginx")
    assert r.exit_code == 2
    assert r.output.strip().splitlines()[-1] == f"Error: {message(field)}"
    assert fake.calls == [] and r.connects == []


@pytest.mark.parametrize(
    "args",
    [
        ["--replicas", "3"],
        ["--mode", "replicated-job", "--replicas", "4", "--max-concurrent", "2"],
        ["--rebalance", "--replicas", "2"],
        ["--mode", "global"],
        ["--mode", "global-job"],
        ["--mode", "replicated", "--replicas-max-per-node", "1"],
    ],
)
def test_create_sends_specs_the_manager_accepts(args: list[str]):
    fake = FakeStub()
    r = run(fake, "svc", "create", "-d", "--name", "svc", *args, "nginx")
    assert r.exit_code == 0, r.output
    (req,) = fake.called("CreateService")
    spec.validate(req.spec)


def test_build_spec_leaves_replicas_unset_unless_given():
    assert not build_spec("nginx", [], {}).HasField("replicas")
    assert build_spec("nginx", [], {"replicas": "0"}).replicas == 0


@pytest.mark.parametrize(("prefix", "ratio"), [("update", "0"), ("update", "1"), ("rollback", "0.25")])
def test_failure_ratio_bounds_are_inclusive(prefix: str, ratio: str):
    fake = FakeStub()
    r = run(fake, "svc", "create", "-d", f"--{prefix}-max-failure-ratio", ratio, "nginx")
    assert r.exit_code == 0, r.output
    sent = fake.called("CreateService")[0].spec
    assert getattr(sent, f"{prefix}_config").max_failure_ratio == pytest.approx(float(ratio))


@pytest.mark.parametrize(("prefix", "ratio"), [("update", "1.5"), ("rollback", "-0.1")])
def test_failure_ratio_out_of_range_is_the_cores_words_on_the_flag(prefix: str, ratio: str):
    fake = FakeStub()
    r = run(fake, "svc", "create", "-d", f"--{prefix}-max-failure-ratio", ratio, "nginx")
    assert r.exit_code == 2
    assert r.output.strip() == f'Error: invalid argument "{ratio}" for "--{prefix}-max-failure-ratio" flag: must be between 0 and 1'
    assert fake.calls == []


@pytest.fixture
def services() -> FakeStub:
    f = FakeStub()
    f.add_service(S(name="web", replicas=2, container=types_pb2.ContainerSpec(image="nginx")))
    f.add_service(S(name="agent", mode=S.GLOBAL, container=types_pb2.ContainerSpec(image="busybox")))
    f.add_service(S(name="batch", mode=S.REPLICATED_JOB, replicas=3, container=types_pb2.ContainerSpec(image="busybox")))
    return f


def test_update_checks_the_mode_of_the_service_it_changes(services: FakeStub):
    r = run(services, "svc", "update", "-d", "--replicas", "3", "agent")
    assert r.exit_code == 2 and r.output.strip().splitlines()[-1] == f"Error: {message('replicas')}"
    r = run(services, "svc", "update", "-d", "--rebalance", "batch")
    assert r.exit_code == 2 and r.output.strip().splitlines()[-1] == f"Error: {message('rebalance')}"
    assert not services.called("UpdateService")


def test_update_accepts_what_the_mode_takes(services: FakeStub):
    assert run(services, "svc", "update", "-d", "--replicas", "5", "batch").exit_code == 0
    assert services.called("UpdateService")[-1].spec.replicas == 5
    r = run(services, "svc", "update", "-d", "--no-rebalance", "agent")
    assert r.exit_code == 0, "turning rebalance off is fine in any mode"
    assert services.called("UpdateService")[-1].spec.rebalance is False


def test_scale_refuses_a_global_service_by_the_replicas_rule(services: FakeStub):
    assert not spec.mode_allows(S.GLOBAL, "replicas")
    r = run(services, "svc", "scale", "-d", "agent=3")
    assert r.exit_code != 0
    assert "agent: scale can only be used with replicated or replicated-job mode" in r.stderr
    assert not services.called("UpdateService")
    assert run(services, "svc", "scale", "-d", "batch=1").exit_code == 0
