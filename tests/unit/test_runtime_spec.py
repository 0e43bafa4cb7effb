"""spec.validate: a ContainerConfig becomes the ContainerSpec the launcher receives, checked once."""

from __future__ import annotations

import json

import pytest

from shoal.runtime import ConfigError, ContainerConfig, caps
from shoal.runtime.cgroup.limits import Limits
from shoal.runtime.spec import ContainerSpec, validate


def cfg(**kw: object) -> ContainerConfig:
    base: dict[str, object] = {"id": "web.1", "image": "busybox", "args": ["sh"]}
    base.update(kw)
    return ContainerConfig(**base)  # type: ignore[arg-type]


def test_limits_are_gathered_into_one_value() -> None:
    spec = validate(cfg(memory_bytes=64 << 20, pids_limit=50, nano_cpus=500_000_000, cpu_shares=512, blkio_weight=300))
    assert spec.limits == Limits(memory_bytes=64 << 20, pids=50, nano_cpus=500_000_000, cpu_shares=512, blkio_weight=300)
    assert validate(cfg()).limits == Limits()


def test_capabilities_become_one_mask() -> None:
    assert validate(cfg()).caps == caps.DOCKER_DEFAULT_MASK
    added = validate(cfg(cap_add=["NET_ADMIN"], cap_drop=["CAP_CHOWN"])).caps
    assert added & (1 << caps.CAP_NUMBERS["CAP_NET_ADMIN"])
    assert not added & (1 << caps.CAP_NUMBERS["CAP_CHOWN"])
    assert validate(cfg(cap_drop=["ALL"])).caps == 0


def test_unknown_capability_is_refused_at_the_client() -> None:
    with pytest.raises(ConfigError, match="unknown capability: 'FLY'"):
        validate(cfg(cap_add=["FLY"]))
    with pytest.raises(ConfigError, match="invalid capability"):
        validate(cfg(cap_drop=[""]))


def test_mounts_are_normalized_once() -> None:
    spec = validate(
        cfg(mounts=[{"type": "bind", "source": "/srv//data/", "target": "/data/"}, {"type": "tmpfs", "target": "/t"}])
    )
    assert spec.mounts == [
        {"type": "bind", "source": "/srv/data", "target": "/data", "readonly": False, "tmpfs_size": 0, "tmpfs_mode": 0,
         "volume_nocopy": False, "volume_subpath": "", "bind_propagation": ""},
        {"type": "tmpfs", "source": "", "target": "/t", "readonly": False, "tmpfs_size": 0, "tmpfs_mode": 0,
         "volume_nocopy": False, "volume_subpath": "", "bind_propagation": ""},
    ]


def test_log_rotation_limits_are_checked() -> None:
    assert (validate(cfg(log_max_size=4096, log_max_files=2)).log_max_size, validate(cfg(log_max_files=2)).log_max_files) == (4096, 2)
    for bad in ({"log_max_size": -1}, {"log_max_files": 101}, {"log_max_files": True}, {"log_max_size": "1m"}):
        with pytest.raises(ConfigError, match="must be a whole number from 0 to"):
            validate(cfg(**bad))


def test_shared_or_slave_propagation_is_refused_with_userns() -> None:
    bind = {"type": "bind", "source": "/srv", "target": "/srv"}
    with pytest.raises(ConfigError, match="bind-propagation shared or slave cannot be used with userns"):
        validate(cfg(image="busybox", userns=True, mounts=[{**bind, "bind_propagation": "rslave"}]))
    assert validate(cfg(image="busybox", userns=True, mounts=[{**bind, "bind_propagation": "rprivate"}])).userns


@pytest.mark.parametrize(
    ("mounts", "message"),
    [
        ([{"type": "nfs", "target": "/x"}], "invalid mount type"),
        ([{"type": "volume", "source": "data", "target": "relative"}], "must be an absolute path"),
        ([{"type": "volume", "source": "-bad", "target": "/x"}], "invalid volume name"),
        ([{"type": "tmpfs", "target": "/proc"}], "reserved"),
        ([{"type": "tmpfs", "target": "/a"}, {"type": "tmpfs", "target": "/a/"}], "duplicate mount point: /a"),
        ([{"type": "tmpfs", "target": "/a", "tmpfs_size": "lots"}], "tmpfs-size must be a size"),
        (["not a dict"], "mounts must be a list of objects"),
    ],
)
def test_bad_mounts_name_what_is_wrong(mounts: list, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(cfg(mounts=mounts))


def test_cpu_quota_is_bounded_by_this_hosts_cpus() -> None:
    assert validate(cfg(nano_cpus=2_000_000_000), ncpu=2).limits.nano_cpus == 2_000_000_000
    with pytest.raises(ConfigError, match="range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs"):
        validate(cfg(nano_cpus=2_000_000_001), ncpu=2)


def test_hostname_and_grace_take_their_effective_values() -> None:
    spec = validate(cfg(id="averyveryverylongid", stop_grace_s=3))
    assert spec.hostname == "averyveryver"
    assert spec.stop_grace_s == 3.0 and isinstance(spec.stop_grace_s, float)
    assert validate(cfg(hostname="db")).hostname == "db"


def test_userns_needs_an_image() -> None:
    with pytest.raises(ConfigError, match="userns needs an image"):
        validate(cfg(image="host", userns=True))
    assert validate(cfg(userns=True)).userns


def test_the_spec_copies_the_callers_lists() -> None:
    config = cfg(args=["sh", "-c", "true"], env=["A=1"], labels={"k": "v"})
    spec = validate(config)
    config.args.append("more")
    config.env.clear()
    config.labels["k"] = "changed"
    assert spec.args == ["sh", "-c", "true"] and spec.env == ["A=1"] and spec.labels == {"k": "v"}


def test_spec_crosses_the_wire_unchanged() -> None:
    spec = validate(
        cfg(
            entrypoint=["/bin/sh", "-c"],
            env=["A=1"],
            user="1000:50",
            workdir="/srv",
            memory_bytes=32 << 20,
            init=True,
            mounts=[{"type": "volume", "source": "data", "target": "/data", "readonly": True}],
            labels={"service": "web"},
        )
    )
    wire = json.loads(json.dumps(spec.to_dict()))
    assert wire["limits"]["memory_bytes"] == 32 << 20
    assert ContainerSpec.from_dict(wire) == spec


def test_from_dict_checks_structure_only() -> None:
    wire = validate(cfg()).to_dict()
    with pytest.raises(ConfigError, match="malformed container spec"):
        ContainerSpec.from_dict({k: v for k, v in wire.items() if k != "limits"})
    with pytest.raises(ConfigError, match="malformed container spec"):
        ContainerSpec.from_dict({**wire, "bogus": 1})
    # Rules are the client's job: the launcher does not run them again.
    assert ContainerSpec.from_dict({**wire, "hostname": "-odd-"}).hostname == "-odd-"


def test_an_entrypoint_override_may_start_with_an_empty_string() -> None:
    spec = validate(cfg(entrypoint=[""], args=["", "x"]))
    assert spec.entrypoint == [""] and spec.args == ["", "x"]
    with pytest.raises(ConfigError, match="args must not start with an empty string"):
        validate(cfg(args=["", "x"]))


def test_a_network_namespace_to_join_is_an_absolute_path_and_crosses_the_wire() -> None:
    spec = validate(cfg(netns_path="/run/netns/task1"))
    assert spec.netns_path == "/run/netns/task1"
    assert ContainerSpec.from_dict(json.loads(json.dumps(spec.to_dict()))).netns_path == "/run/netns/task1"
    assert validate(cfg()).netns_path == ""
    with pytest.raises(ConfigError, match="netns_path must be an absolute path, got 'run/netns/x'"):
        validate(cfg(netns_path="run/netns/x"))
    with pytest.raises(ConfigError, match="netns_path cannot be used with userns"):
        validate(cfg(netns_path="/run/netns/x", userns=True))
