"""docker's boolean flags with a value (``--detach=false``, ``--read-only=true``) as scripts written for docker type them."""

from __future__ import annotations

import pytest

from shoal.cli.boolflags import rewrite
from shoal.cli.service_create import create_command
from shoal.cli.service_update import update_command
from shoal.proto import types_pb2
from tests.fixtures.cli_fakes import FakeStub, run


@pytest.mark.parametrize(
    ("args", "read"),
    [
        (["--detach=false", "--read-only=true", "-q=1", "busybox"], ["--read-only", "-q", "busybox"]),
        (["--name", "--detach=true", "busybox"], ["--name", "--detach=true", "busybox"]),  # a value stays a value
        (["--detach=maybe", "busybox"], ["--detach=maybe", "busybox"]),  # not a bool: click refuses it
        (["-d", "busybox", "echo", "--detach=false", "--", "-q=1"], ["-d", "busybox", "echo", "--detach=false", "--", "-q=1"]),
        (["--", "--detach=true"], ["--", "--detach=true"]),
        (["--rebalance=False", "--init=T", "busybox"], ["--init", "busybox"]),
    ],
)
def test_create_reads_a_bool_flag_with_a_value_and_leaves_the_command_line_alone(args: list[str], read: list[str]) -> None:
    assert rewrite(create_command, args) == read


def test_a_flag_with_an_off_switch_uses_it_and_options_may_follow_the_argument() -> None:
    assert rewrite(update_command, ["web", "--rebalance=false", "--detach=TRUE", "--force=0"]) == ["web", "--no-rebalance", "--detach"]


def test_svc_update_takes_dockers_detach_true_and_force_false() -> None:
    fake = FakeStub()
    fake.add_service(types_pb2.ServiceSpec(name="web", replicas=2, container=types_pb2.ContainerSpec(image="nginx")))
    r = run(fake, "svc", "update", "--detach=true", "--force=false", "--replicas=3", "web")
    assert r.exit_code == 0, r.output
    sent = fake.called("UpdateService")[-1].spec
    assert sent.replicas == 3 and sent.force_update == 0
    bad = run(fake, "svc", "update", "--detach=maybe", "web")
    assert bad.exit_code == 2 and "does not take a value" in bad.output
