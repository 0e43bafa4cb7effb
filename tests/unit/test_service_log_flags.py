"""svc create/update --log-driver / --log-opt as docker has them: checked with the manager's rules before
anything is sent, what is not applied named, an update's driver taking only the options given with it."""

from __future__ import annotations

import pytest

from shoal import spec
from shoal.proto import types_pb2 as pb
from tests.fixtures.cli_fakes import FakeStub, run


def _created(*args: str) -> tuple[pb.ContainerSpec, str]:
    fake = FakeStub()
    r = run(fake, "svc", "create", "-d", "--name", "web", *args, "busybox", "sleep", "9")
    assert r.exit_code == 0, r.output
    (req,) = fake.called("CreateService")
    spec.validate(req.spec, images=frozenset({"busybox"}))
    return req.spec.container, r.output


def test_create_sets_the_driver_and_its_options() -> None:
    c, out = _created("--log-driver", "json-file", "--log-opt", "max-size=10m", "--log-opt", "max-file=3")
    assert (c.log_driver, dict(c.log_options)) == ("json-file", {"max-size": "10m", "max-file": "3"})
    assert "Not applied" not in out


def test_options_without_a_driver_are_json_files_and_no_flag_leaves_both_empty() -> None:
    c, _ = _created("--log-opt", "max-size=1k")
    assert (c.log_driver, dict(c.log_options)) == ("", {"max-size": "1k"})
    c, _ = _created()
    assert (c.log_driver, dict(c.log_options)) == ("", {})


def test_what_shoal_does_not_apply_is_named_not_dropped() -> None:
    c, out = _created("--log-driver", "syslog", "--log-opt", "syslog-address=udp://1.2.3.4:514")
    assert c.log_driver == "syslog" and dict(c.log_options) == {"syslog-address": "udp://1.2.3.4:514"}
    assert "Not applied (every node writes json-file logs): log driver syslog (json-file is used)" in out
    _, out = _created("--log-opt", "max-size=1m", "--log-opt", "compress=true")
    assert "Not applied (every node writes json-file logs): log opt compress" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--log-opt", "max-size"], 'invalid argument "max-size" for "--log-opt" flag: expected KEY=VALUE'),
        (["--log-opt", "max-size=10x"], 'invalid argument "max-size=10x" for "--log-opt" flag: invalid max-size'),
        (["--log-opt", "max-file=3"], 'invalid argument "max-file=3" for "--log-opt" flag: max-file cannot be greater than 1'),
        (["--log-driver", "json-file", "--log-opt", "colour=red"], "unknown log opt 'colour' for json-file log driver"),
    ],
)
def test_bad_log_flags_are_one_error_and_nothing_is_sent(args: list[str], message: str) -> None:
    fake = FakeStub()
    r = run(fake, "svc", "create", "-d", "--name", "web", *args, "busybox")
    assert r.exit_code == 2, r.output
    assert message in r.output.strip().splitlines()[-1], r.output
    assert fake.calls == [] and r.connects == []


@pytest.fixture
def services() -> FakeStub:
    f = FakeStub()
    c = pb.ContainerSpec(image="busybox", log_driver="json-file", log_options={"max-size": "1m", "max-file": "2"})
    f.add_service(pb.ServiceSpec(name="web", replicas=1, container=c))
    return f


def _updated(services: FakeStub, *args: str) -> pb.ContainerSpec:
    r = run(services, "svc", "update", "-d", *args, "web")
    assert r.exit_code == 0, r.output
    sent = services.called("UpdateService")[-1].spec
    spec.validate(sent, images=frozenset({"busybox"}))
    return sent.container


def test_update_keeps_logging_unless_asked(services: FakeStub) -> None:
    c = _updated(services, "--user", "nobody")
    assert (c.log_driver, dict(c.log_options)) == ("json-file", {"max-size": "1m", "max-file": "2"})


def test_update_a_driver_takes_only_the_options_given_with_it(services: FakeStub) -> None:
    c = _updated(services, "--log-driver", "json-file", "--log-opt", "max-size=5m")
    assert (c.log_driver, dict(c.log_options)) == ("json-file", {"max-size": "5m"})
    c = _updated(services, "--log-driver", "json-file")
    assert dict(c.log_options) == {}


def test_update_options_alone_replace_those_of_the_current_driver(services: FakeStub) -> None:
    c = _updated(services, "--log-opt", "max-size=20m", "--log-opt", "max-file=4")
    assert (c.log_driver, dict(c.log_options)) == ("json-file", {"max-size": "20m", "max-file": "4"})


def test_update_with_a_bad_option_sends_nothing(services: FakeStub) -> None:
    r = run(services, "svc", "update", "-d", "--log-opt", "max-file=500", "web")
    assert r.exit_code == 2 and "invalid max-file '500'" in r.output
    assert not services.called("UpdateService")
