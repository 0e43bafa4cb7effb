"""Every rule a container config is checked against at the client, one bad value at a time: the error names
the field (one line, ConfigError) and a good config still passes. Pure: ``validate`` only reads the config.
"""

from __future__ import annotations

import dataclasses

import pytest

from shoal.runtime import ConfigError, ContainerConfig
from shoal.runtime.spec import effective_env, validate


def config(**kw: object) -> ContainerConfig:
    return dataclasses.replace(ContainerConfig(id="c1", image="busybox", args=["true"]), **kw)  # type: ignore[arg-type]


def test_a_plain_config_passes():
    spec = validate(config(), ncpu=2)
    assert spec.id == "c1" and spec.hostname == "c1" and spec.stop_signal == 15


@pytest.mark.parametrize(("kw", "words"), [
    ({"id": "Bad Id"}, "invalid container id 'Bad Id'"),
    ({"id": ".."}, "invalid container id '..'"),
    ({"id": "x" * 65}, "invalid container id"),
    ({"image": ""}, "image is required"),
    ({"args": ["ok", 3]}, "args must be a list of strings"),
    ({"args": ["a\x00b"]}, "args must not contain NUL bytes"),
    ({"entrypoint": ["x\x00"]}, "entrypoint must not contain NUL bytes"),
    ({"args": ["", "x"]}, "args must not start with an empty string"),
    ({"env": ["NOEQUALS"]}, "invalid env entry 'NOEQUALS': expected KEY=VALUE"),
    ({"env": ["A=b\x00c"]}, "invalid env entry"),
    ({"workdir": "relative/dir"}, "workdir must be absolute, got 'relative/dir'"),
    ({"hostname": "bad_host!"}, "invalid hostname 'bad_host!'"),
    ({"user": "a:b:c"}, "invalid user 'a:b:c'"),
    ({"memory_bytes": -1}, "memory_bytes must be an integer >= 0, got -1"),
    ({"memory_bytes": 1024}, "memory_bytes must be 0 or at least 6291456 (6 MiB)"),
    ({"memory_bytes": True}, "memory_bytes must be an integer >= 0, got True"),
    ({"pids_limit": 1.5}, "pids_limit must be an integer >= 0"),
    ({"nano_cpus": 1000}, "nano_cpus must be 0 or at least 10000000 (0.01 CPU)"),
    ({"nano_cpus": 3_000_000_000}, "range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
    ({"cpu_shares": 1}, "cpu_shares must be 0 or 2..262144, got 1"),
    ({"cpu_shares": 262145}, "cpu_shares must be 0 or 2..262144"),
    ({"blkio_weight": 5}, "blkio_weight must be 0 or 10..1000, got 5"),
    ({"cap_add": [""]}, "invalid capability ''"),
    ({"cap_add": ["CAP_NOT_A_THING"]}, "unknown capability"),
    ({"mounts": "not-a-list"}, "mounts must be a list of objects"),
    ({"userns": True, "image": "host"}, "userns needs an image: the host image cannot be remapped"),
    ({"stop_grace_s": -1}, "stop_grace_s must be a finite number >= 0, got -1"),
    ({"stop_grace_s": float("inf")}, "stop_grace_s must be a finite number >= 0"),
    ({"labels": {"a": 1}}, "labels must map strings to strings"),
    ({"netns_path": "relative"}, "netns_path must be an absolute path, got 'relative'"),
    ({"netns_path": "/run/netns/x", "userns": True}, "netns_path cannot be used with userns"),
    ({"masked_paths": "/etc"}, "masked_paths must be a list of absolute paths"),
    ({"masked_paths": ["etc"]}, "masked_paths: 'etc' is not an absolute path"),
    ({"masked_paths": ["/x/.."]}, "masked_paths: / cannot be masked"),
    ({"seccomp": 3}, 'seccomp must be "", "unconfined" or a profile document'),
    ({"seccomp": "{not json"}, "seccomp profile: not JSON"),
    ({"group_add": ["a:b"]}, "invalid group"),
    ({"ulimits": [{"name": "nofile"}]}, "invalid ulimits"),
])  # fmt: skip
def test_each_bad_value_is_refused_naming_its_field(kw, words):
    with pytest.raises(ConfigError) as e:
        validate(config(**kw), ncpu=2)
    assert words in str(e.value)
    assert "\n" not in str(e.value), "one line"


def test_masked_paths_are_normalised_and_the_hostname_defaults_to_the_short_id():
    spec = validate(config(id="a" * 64, masked_paths=["/var/lib/../lib/shoal/"]), ncpu=2)
    assert spec.masked_paths == ["/var/lib/shoal"] and spec.hostname == "a" * 12


def test_a_stop_signal_by_name_becomes_its_number():
    assert validate(config(stop_signal="SIGQUIT"), ncpu=2).stop_signal == 3


def test_the_environment_gets_dockers_defaults_unless_set():
    assert effective_env(["A=1"], "box", "/root") == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                                      "HOSTNAME=box", "A=1", "HOME=/root"]
    mine = effective_env(["PATH=/bin", "HOSTNAME=mine", "HOME=/home/x"], "box", "/root")
    assert mine == ["PATH=/bin", "HOSTNAME=mine", "HOME=/home/x"]
