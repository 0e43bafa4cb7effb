"""The manager's validation of a service's container settings (shoal.spec_container through shoal.spec)."""

from __future__ import annotations

import pytest

from shoal import spec as specs
from shoal import spec_container
from shoal.proto import types_pb2 as pb


def _spec(**container: object) -> pb.ServiceSpec:
    s = pb.ServiceSpec(name="web")
    s.container.CopyFrom(pb.ContainerSpec(image="busybox", **container))  # type: ignore[arg-type]
    return s


def _refused(field: str, message: str, **container: object) -> None:
    with pytest.raises(specs.SpecError) as err:
        specs.validate(_spec(**container), images=frozenset({"busybox"}))
    assert err.value.field == field and message in err.value.message, str(err.value)


def test_a_spec_with_every_field_passes() -> None:
    specs.validate(_spec(
        mounts=[pb.Mount(type=pb.Mount.VOLUME, source="data-{{.Task.Slot}}", target="/data"),
                pb.Mount(type=pb.Mount.BIND, source="/srv", target="/srv", readonly=True),
                pb.Mount(type=pb.Mount.TMPFS, target="/tmp", tmpfs_size_bytes=1 << 20, tmpfs_mode=0o700)],
        read_only=True, cap_add=["NET_ADMIN"], cap_drop=["CAP_CHOWN", "all"], stop_signal="SIGUSR1",
        ulimits=[pb.Ulimit(name="nofile", soft=10, hard=20)], sysctls={"net.core.somaxconn": "512"},
        groups=["audio", "100"], dns_config=pb.DNSConfig(nameservers=["10.0.0.2"], search=["x.org"], options=["ndots:1"]),
        hostname="{{.Service.Name}}-{{.Task.Slot}}", env=["NODE={{.Node.Hostname}}"],
    ), images=frozenset({"busybox"}))  # fmt: skip


def test_each_bad_field_is_named() -> None:
    _refused("mounts", "must be an absolute path", mounts=[pb.Mount(type=pb.Mount.BIND, source="/a", target="rel")])
    _refused("mounts", "invalid mount type 7", mounts=[pb.Mount(type=7, target="/x")])  # type: ignore[arg-type]
    _refused("mounts", "duplicate mount point", mounts=[pb.Mount(target="/x"), pb.Mount(type=pb.Mount.TMPFS, target="/x")])
    _refused("cap_add", "unknown capability: 'FLY'", cap_add=["FLY"])
    _refused("cap_drop", "unknown capability", cap_drop=[""])
    _refused("stop_signal", "invalid signal", stop_signal="SIGFOO")
    _refused("ulimits", "invalid ulimit name", ulimits=[pb.Ulimit(name="files", soft=1, hard=1)])
    _refused("sysctls", "not allowed", sysctls={"kernel.core_pattern": "|/x"})
    _refused("groups", "invalid group", groups=["a:b"])
    _refused("dns", "expected an IP address", dns_config=pb.DNSConfig(nameservers=["dns.google"]))
    _refused("dns_search", "invalid DNS search", dns_config=pb.DNSConfig(search=["a b"]))
    _refused("dns_option", "invalid DNS option", dns_config=pb.DNSConfig(options=["a b"]))
    _refused("hostname", "unknown field", hostname="{{.Task.Number}}")
    _refused("hostname", "not a valid hostname", hostname="a_b")
    _refused("env", "unknown field", env=["A={{.Nope}}"])
    _refused("workdir", "needs to be an absolute path", dir="app")


def test_mount_dict_round_trip_and_text() -> None:
    m = pb.Mount(type=pb.Mount.TMPFS, target="/t", readonly=True, tmpfs_size_bytes=1024, tmpfs_mode=0o700)
    assert spec_container.mount_from_dict(spec_container.mount_to_dict(m)) == m
    assert spec_container.mount_text(m) == "type=tmpfs,target=/t,readonly,tmpfs-size=1024,tmpfs-mode=700"
    v = pb.Mount(source="data", target="/d", volume_nocopy=True)
    assert spec_container.mount_text(v) == "type=volume,source=data,target=/d,volume-nocopy"
