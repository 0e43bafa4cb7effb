"""docker's update rules for the container flags (removals before additions, replacement by key)."""

from __future__ import annotations

import pytest

from shoal.cli.service_flags_container import apply_create, apply_update, parse_mount
from shoal.cli.service_opts import FlagError
from shoal.proto import types_pb2 as pb


def _c(**kw: object) -> pb.ContainerSpec:
    return pb.ContainerSpec(image="busybox", **kw)  # type: ignore[arg-type]


def test_an_added_mount_replaces_the_one_on_its_target_and_rm_matches_normalized_targets() -> None:
    c = _c(mounts=[pb.Mount(source="a", target="/data"), pb.Mount(type=pb.Mount.TMPFS, target="/t")])
    apply_update(c, {"mount_add": ("type=volume,source=b,target=/data/",)})
    assert [(m.source, m.target) for m in c.mounts] == [("", "/t"), ("b", "/data")]
    apply_update(c, {"mount_rm": ("/t/",)})
    assert [m.target for m in c.mounts] == ["/data"]
    with pytest.raises(FlagError, match="must be an absolute path"):
        apply_update(c, {"mount_rm": ("data",)})


def test_cap_add_and_drop_cancel_each_other_as_in_docker() -> None:
    c = _c(cap_add=["NET_ADMIN", "SYS_TIME"], cap_drop=["CHOWN"])
    apply_update(c, {"cap_add": ("chown",), "cap_drop": ("CAP_NET_ADMIN",)})
    assert list(c.cap_add) == ["SYS_TIME", "chown"] and list(c.cap_drop) == ["CAP_NET_ADMIN"]
    apply_update(c, {"cap_add": ("SYS_TIME",)})
    assert list(c.cap_add) == ["SYS_TIME", "chown"], "adding one already there changes nothing"


def test_ulimits_merge_by_name_and_sysctl_rm_takes_a_key_or_key_value() -> None:
    c = _c()
    apply_create(c, {"ulimit": ("nofile=1:2", "nproc=3", "nofile=5:6")})
    assert [(u.name, u.soft, u.hard) for u in c.ulimits] == [("nofile", 5, 6), ("nproc", 3, 3)]
    c.sysctls.update({"net.core.somaxconn": "1", "kernel.shmmni": "2"})
    apply_update(c, {"sysctl_rm": ("net.core.somaxconn=1", "kernel.shmmni")})
    assert dict(c.sysctls) == {}


def test_dns_values_are_kept_once_in_order() -> None:
    c = _c()
    apply_create(c, {"dns": ("10.0.0.2", "10.0.0.2", "10.0.0.3"), "dns_search": ("a.org",), "dns_option": ("ndots:1",)})
    assert list(c.dns_config.nameservers) == ["10.0.0.2", "10.0.0.3"]
    apply_update(c, {"dns_search_rm": ("a.org",), "dns_option_rm": ("ndots:1",), "dns_option_add": ("rotate",)})
    assert list(c.dns_config.search) == [] and list(c.dns_config.options) == ["rotate"]


def test_flags_not_given_leave_the_spec_as_it_was() -> None:
    c = _c(user="app", dir="/srv", hostname="h", stop_signal="SIGINT", read_only=True, init=True, command=["/init"], groups=["g"])
    before = pb.ContainerSpec()
    before.CopyFrom(c)
    apply_update(c, {})
    assert c == before
    apply_update(c, {"stop_signal": "", "entrypoint": ""})
    assert c.stop_signal == "" and list(c.command) == [], "an empty value resets to the image's default"


def test_parse_mount_names_the_flag() -> None:
    assert parse_mount("--mount", "type=tmpfs,target=/t").type == pb.Mount.TMPFS
    with pytest.raises(FlagError, match='for "--mount-add" flag'):
        parse_mount("--mount-add", "type=tmpfs,target=t")
