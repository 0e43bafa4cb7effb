"""Pure parts of the runtime: config validation and defaults, user resolution, caps, wire errors."""

from __future__ import annotations

import json
import os

import pytest

from shoal.runtime import (
    ConfigError,
    ContainerConfig,
    ContainerInfo,
    StartError,
    caps,
    errors,
    protocol,
)
from shoal.runtime.launcher import users
from shoal.runtime.launcher.resolve import Resolved
from shoal.runtime.launcher.state import ContainerState
from shoal.runtime.spec import DEFAULT_PATH, effective_env, validate


def cfg(**kw: object) -> ContainerConfig:
    base: dict[str, object] = {"id": "web.1_a-b", "image": "host", "args": ["true"]}
    base.update(kw)
    return ContainerConfig(**base)  # type: ignore[arg-type]


def test_valid_config_passes() -> None:
    validate(cfg(env=["A=1", "B="], memory_bytes=64 << 20, pids_limit=10, nano_cpus=10**9, user="1:2"))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"id": ""}, "invalid container id"),
        ({"id": "UPPER"}, "invalid container id"),
        ({"id": "a/b"}, "invalid container id"),
        ({"id": "x" * 65}, "invalid container id"),
        ({"id": ".."}, "invalid container id"),
        ({"image": ""}, "image is required"),
        ({"args": "true"}, "args must be a list"),
        ({"args": [""]}, "args must not start with an empty"),
        ({"entrypoint": ["a\x00"]}, "entrypoint must not contain NUL"),
        ({"cpu_shares": 1}, "cpu_shares must be"),
        ({"blkio_weight": 5000}, "blkio_weight must be"),
        ({"args": ["a\x00b"]}, "NUL"),
        ({"env": ["NOEQUALS"]}, "invalid env entry"),
        ({"env": ["=x"]}, "invalid env entry"),
        ({"workdir": "relative"}, "workdir must be absolute"),
        ({"hostname": "-bad"}, "invalid hostname"),
        ({"user": "a:b:c"}, "invalid user"),
        ({"memory_bytes": -1}, "memory_bytes"),
        ({"memory_bytes": 1024}, "at least"),
        ({"pids_limit": True}, "pids_limit"),
        ({"nano_cpus": 5}, "nano_cpus"),
        ({"stop_grace_s": -1}, "stop_grace_s"),
        ({"stop_grace_s": float("inf")}, "stop_grace_s"),
        ({"labels": {"a": 1}}, "labels"),
    ],
)
def test_invalid_config_is_rejected(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(cfg(**kw))


def test_config_round_trips_through_json_and_rejects_unknown_fields() -> None:
    c = cfg(env=["A=1"], labels={"k": "v"}, memory_bytes=8 << 20)
    assert ContainerConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(ConfigError, match="unknown config fields: bogus"):
        ContainerConfig.from_dict({**c.to_dict(), "bogus": 1})


def test_hostname_defaults_to_first_12_chars_of_id() -> None:
    assert validate(cfg(id="abcdefghijklmnop")).hostname == "abcdefghijkl"
    assert validate(cfg(hostname="web")).hostname == "web"


def test_env_defaults_fill_path_hostname_home_but_keep_callers_values() -> None:
    env = effective_env(["FOO=1"], "c1", "/root")
    assert env == [f"PATH={DEFAULT_PATH}", "HOSTNAME=c1", "FOO=1", "HOME=/root"]
    env = effective_env(["PATH=/x", "HOME=/h", "HOSTNAME=h"], "c1", "/root")
    assert env == ["PATH=/x", "HOME=/h", "HOSTNAME=h"]


PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000::/home/app:/bin/sh
broken line
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
GROUP = """root:x:0:
audio:x:29:app
staff:x:50:app,daemon
app:x:1000:
"""


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", users.Identity(0, 0, (), "/root")),
        ("root", users.Identity(0, 0, (), "/root")),
        ("app", users.Identity(1000, 1000, (29, 50), "/home/app")),
        ("1000", users.Identity(1000, 1000, (29, 50), "/home/app")),
        ("app:staff", users.Identity(1000, 50, (29,), "/home/app")),
        ("4242", users.Identity(4242, 0, (), "/")),
        ("4242:77", users.Identity(4242, 77, (), "/")),
        ("daemon:0", users.Identity(1, 0, (50,), "/usr/sbin")),
    ],
)
def test_user_resolution(spec: str, expected: users.Identity) -> None:
    assert users.resolve(spec, PASSWD, GROUP) == expected


def test_unknown_user_or_group_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unable to find user ghost"):
        users.resolve("ghost", PASSWD, GROUP)
    with pytest.raises(ConfigError, match="unable to find group ghosts"):
        users.resolve("app:ghosts", PASSWD, GROUP)


def test_resolve_in_rootfs_tolerates_missing_files(tmp_path: object) -> None:
    assert users.resolve_in_rootfs("12:34", str(tmp_path)) == users.Identity(12, 34, (), "/")


def test_docker_default_capability_mask() -> None:
    assert caps.DOCKER_DEFAULT_MASK == 0xA80425FB
    assert caps.mask(["CAP_CHOWN", "CAP_KILL"]) == 0b100001


def test_errors_cross_the_wire_with_type_and_message() -> None:
    wire = json.loads(json.dumps(errors.to_wire(StartError('exec: "x": not found'))))
    exc = errors.from_wire(wire)
    assert type(exc) is StartError and str(exc) == 'exec: "x": not found'
    odd = errors.from_wire(errors.to_wire(KeyError("k")))
    assert type(odd) is errors.ContainerError and "KeyError" in str(odd)
    assert type(errors.from_wire({"type": "Nope", "message": "m"})) is errors.ContainerError


def test_protocol_round_trip_and_long_socket_paths(tmp_path: object) -> None:
    assert protocol.decode(protocol.encode(protocol.ok(a=1))) == {"ok": True, "a": 1}
    with pytest.raises(ValueError):
        protocol.decode(b"[1]")
    deep = os.path.join(str(tmp_path), "d" * 120)
    os.makedirs(deep)
    sp = protocol.SocketPath(os.path.join(deep, "launcher.sock"))
    try:
        assert len(sp.path) < 108 and sp.path.startswith("/proc/self/fd/")
    finally:
        sp.close()
    assert protocol.SocketPath("/run/x.sock").path == "/run/x.sock"


def test_state_reports_info_and_survives_json() -> None:
    spec = validate(cfg(id="c", labels={"a": "b"}))
    resolved = Resolved(["true"], ["PATH=/bin"], "/", 0, 0, [], "/root", image_id="host")
    st = ContainerState(id="c", spec=spec, resolved=resolved, status="running", pid=42)
    again = ContainerState.from_json(st.to_json())
    assert again == st
    info = again.info()
    assert isinstance(info, ContainerInfo) and info.pid == 42 and info.labels == {"a": "b"}
    st.status = "exited"
    assert st.info().pid == 0
