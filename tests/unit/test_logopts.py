"""A service's log driver and options (shoal.logopts): json-file's rotation is applied, the rest is named."""

from __future__ import annotations

import pytest

from shoal import logopts
from shoal import spec as specs
from shoal.logopts import LogOptError
from shoal.proto import types_pb2 as pb


def test_json_file_rotation_in_docker_units() -> None:
    assert logopts.rotation("", {}) == (0, 0), "nothing given: the node's defaults"
    assert logopts.rotation("json-file", {"max-size": "10m", "max-file": "3"}) == (10 << 20, 3)
    assert logopts.rotation("", {"max-size": "512k"}) == (512 << 10, 0)
    assert logopts.rotation("json-file", {"max-size": "-1", "max-file": "1"}) == (0, 1), "-1: no size limit (docker)"
    assert logopts.rotation("json-file", {"compress": "true", "tag": "{{.Name}}"}) == (0, 0)
    assert logopts.rotation("syslog", {"syslog-address": "udp://x:514"}) == (0, 0), "another driver: nothing to rotate"


@pytest.mark.parametrize(("options", "message"), [
    ({"max-sise": "1m"}, "unknown log opt 'max-sise' for json-file log driver"),
    ({"max-size": "lots"}, "invalid max-size 'lots'"),
    ({"max-size": "0"}, "must be a positive size"),
    ({"max-size": "1m", "max-file": "0"}, "invalid max-file '0': a whole number from 1 to 100"),
    ({"max-size": "1m", "max-file": "x"}, "invalid max-file 'x'"),
    ({"max-size": "1m", "max-file": "101"}, "from 1 to 100"),
    ({"max-file": "2"}, "max-file cannot be greater than 1 when max-size is not set"),
])  # fmt: skip
def test_bad_json_file_options_are_one_clear_error(options: dict[str, str], message: str) -> None:
    with pytest.raises(LogOptError, match=message):
        logopts.rotation("json-file", options)


def test_what_is_not_applied_is_named() -> None:
    assert logopts.unapplied("", {"max-size": "1m", "max-file": "2"}) == []
    assert logopts.unapplied("json-file", {"compress": "true", "tag": "x", "max-size": "1m"}) == ["log opt compress", "log opt tag"]
    assert logopts.unapplied("journald", {"tag": "x"}) == ["log driver journald (json-file is used)"]


def test_the_manager_refuses_a_bad_option_naming_the_field() -> None:
    s = pb.ServiceSpec(name="web")
    s.container.CopyFrom(pb.ContainerSpec(image="busybox", log_driver="json-file", log_options={"max-file": "9"}))
    with pytest.raises(specs.SpecError, match="log_options: max-file cannot be greater than 1"):
        specs.validate(s, images=frozenset({"busybox"}))
    s.container.log_options["max-size"] = "1m"
    specs.validate(s, images=frozenset({"busybox"}))
