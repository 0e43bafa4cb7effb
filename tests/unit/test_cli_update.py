"""`svc update` and `svc create --rebalance` against a fake manager: the spec sent, errors, retries."""

from __future__ import annotations

import grpc
import pytest

from shoal.proto import types_pb2
from tests.fixtures.cli_fakes import FakeRpcError, FakeStub, run

S = types_pb2.ServiceSpec


@pytest.fixture
def fake() -> FakeStub:
    f = FakeStub()
    web = S(name="web", replicas=2, container=types_pb2.ContainerSpec(image="nginx", args=["-g", "daemon off;"]))
    web.labels.update({"team": "a", "tier": "front"})
    web.placement.constraints.extend(["node.role==worker", "node.labels.zone==east"])
    f.add_service(web)
    f.add_service(S(name="agent", mode=S.GLOBAL, container=types_pb2.ContainerSpec(image="busybox")))
    return f


def _sent(fake: FakeStub) -> types_pb2.ServiceSpec:
    return fake.called("UpdateService")[-1].spec


def test_update_changes_only_the_flags_given(fake: FakeStub) -> None:
    r = run(
        fake, "svc", "update", "-d", "--replicas", "5", "--image", "nginx:1.27", "--args", "sleep 'a b'",
        "--label-add", "team=b", "--label-rm", "tier", "--constraint-rm", "node.labels.zone == east",
        "--constraint-add", "node.labels.disk==ssd", "--update-parallelism", "2", "web",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "web"
    spec = _sent(fake)
    assert spec.replicas == 5 and spec.container.image == "nginx:1.27"
    assert list(spec.container.args) == ["sleep", "a b"]
    assert dict(spec.labels) == {"team": "b"}
    assert list(spec.placement.constraints) == ["node.role==worker", "node.labels.disk==ssd"]
    assert spec.update_config.parallelism == 2
    assert fake.called("UpdateService")[-1].version == 1


def test_rebalance_can_be_turned_on_and_off(fake: FakeStub) -> None:
    assert run(fake, "svc", "update", "-d", "--rebalance", "web").exit_code == 0
    assert _sent(fake).rebalance is True
    assert run(fake, "svc", "update", "-d", "--replicas", "3", "web").exit_code == 0
    assert _sent(fake).rebalance is True, "a flag not given leaves the setting alone"
    assert run(fake, "svc", "update", "-d", "--no-rebalance", "web").exit_code == 0
    assert _sent(fake).rebalance is False


def test_create_with_rebalance(fake: FakeStub) -> None:
    r = run(fake, "svc", "create", "-d", "--name", "api", "--replicas", "4", "--rebalance", "nginx")
    assert r.exit_code == 0, r.output
    assert fake.called("CreateService")[0].spec.rebalance is True
    r = run(fake, "svc", "create", "-d", "--name", "g", "--mode", "global", "--rebalance", "nginx")
    assert r.exit_code == 2 and "rebalance can only be used with replicated mode" in r.output
    assert len(fake.called("CreateService")) == 1


def test_bad_values_send_nothing(fake: FakeStub) -> None:
    for args, text in (
        (["--replicas", "many"], 'invalid argument "many" for "--replicas" flag'),
        (["--args", "unterminated 'quote"], '"--args" flag'),
        (["--label-add", "=x"], '"--label-add" flag'),
        (["--update-parallelism", "-1"], '"--update-parallelism" flag'),
    ):
        r = run(fake, "svc", "update", "-d", *args, "web")
        assert r.exit_code == 2 and text in r.output, (args, r.output)
    r = run(fake, "svc", "update", "-d", "--replicas", "2", "agent")
    assert r.exit_code == 2 and "replicas can only be used with replicated" in r.output
    r = run(fake, "svc", "update", "-d", "--rebalance", "agent")
    assert r.exit_code == 2 and "rebalance can only be used with replicated mode" in r.output
    assert not fake.called("UpdateService")


def test_unknown_service_is_one_line(fake: FakeStub) -> None:
    r = run(fake, "svc", "update", "-d", "--replicas", "1", "nope")
    assert r.exit_code == 1 and r.output.strip() == "Error: no such service: nope"


def test_a_version_conflict_is_retried_on_a_fresh_read(fake: FakeStub) -> None:
    conflict = FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, "update out of sequence: the service changed since it was read")
    fake.fail["UpdateService"] = [conflict]
    r = run(fake, "svc", "update", "-d", "--replicas", "4", "web")
    assert r.exit_code == 0, r.output
    assert len(fake.called("GetService")) == 2 and _sent(fake).replicas == 4
    fake.fail["UpdateService"] = [conflict] * 4
    r = run(fake, "svc", "update", "-d", "--replicas", "4", "web")
    assert r.exit_code == 1 and "update out of sequence" in r.output


def test_the_create_only_flags_docker_also_updates(fake: FakeStub) -> None:
    """docker's `service update` also takes --replicas-max-per-node, --max-concurrent (jobs), --endpoint-mode
    and --stop-grace-period; a value the mode refuses or that does not parse sends nothing."""
    r = run(fake, "svc", "update", "-d", "--replicas-max-per-node", "2", "--endpoint-mode", "dnsrr", "--stop-grace-period", "3s", "web")
    assert r.exit_code == 0, r.output
    spec = _sent(fake)
    assert (spec.placement.max_replicas_per_node, spec.endpoint_mode, spec.container.stop_grace_period_ns) == (2, types_pb2.DNSRR, 3 * 10**9)
    assert spec.replicas == 2 and list(spec.container.args) == ["-g", "daemon off;"], "the rest stays"
    fake.add_service(S(name="batch", mode=S.REPLICATED_JOB, replicas=6, container=types_pb2.ContainerSpec(image="busybox")))
    assert run(fake, "svc", "update", "-d", "--max-concurrent", "3", "batch").exit_code == 0
    assert _sent(fake).max_concurrent == 3
    calls = len(fake.called("UpdateService"))
    for args, text in (
        (["--max-concurrent", "2", "web"], "max-concurrent can only be used with replicated-job mode"),
        (["--stop-grace-period", "soon", "web"], '"--stop-grace-period" flag'),
        (["--replicas-max-per-node", "-1", "web"], '"--replicas-max-per-node" flag'),
        (["--endpoint-mode", "lb", "web"], "'lb' is not one of 'vip', 'dnsrr'"),
    ):
        r = run(fake, "svc", "update", "-d", *args)
        assert r.exit_code == 2 and text in r.output, (args, r.output)
    assert len(fake.called("UpdateService")) == calls
