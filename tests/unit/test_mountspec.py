"""docker's --mount syntax and the one set of rules every entry point applies (shoal.mountspec)."""

from __future__ import annotations

import pytest

from shoal import mountspec
from shoal.mountspec import MountError


def test_the_three_types_with_docker_keys_and_aliases() -> None:
    assert mountspec.parse("type=volume,source=data,target=/var/lib/data,volume-nocopy") == {
        "type": "volume", "source": "data", "target": "/var/lib/data", "readonly": False,
        "volume_nocopy": True, "tmpfs_size": 0, "tmpfs_mode": 0, "volume_subpath": "", "bind_propagation": "",
    }  # fmt: skip
    bind = mountspec.parse("type=bind,src=/srv//www/,dst=/usr/share/www/,ro")
    assert (bind["source"], bind["target"], bind["readonly"]) == ("/srv/www", "/usr/share/www", True)
    tmp = mountspec.parse("type=tmpfs,destination=/cache,tmpfs-size=64m,tmpfs-mode=0700")
    assert (tmp["tmpfs_size"], tmp["tmpfs_mode"], tmp["source"]) == (64 << 20, 0o700, "")
    assert mountspec.parse("target=/data")["type"] == "volume", "docker's default type; an anonymous volume"
    assert mountspec.parse("type=bind,source=/a,target=/b,readonly=false")["readonly"] is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("type=nfs,source=a,target=/x", "invalid mount type 'nfs': use bind, volume or tmpfs"),
        ("type=volume,source=data,target=data", "invalid mount target 'data': must be an absolute path"),
        ("type=volume,source=data,target=/a/../etc", "must not contain '..'"),
        ("type=bind,source=/a,target=/", "reserved"),
        ("type=bind,source=/a,target=/proc/", "reserved"),
        ("type=bind,source=relative,target=/x", "invalid bind source 'relative': must be an absolute path"),
        ("type=bind,source=/srv/../etc,target=/x", "must not contain '..'"),
        ("type=bind,target=/x", "a bind mount needs a source"),
        ("type=volume,source=../../etc,target=/x", "invalid volume name '../../etc'"),
        ("type=volume,source=/etc,target=/x", "invalid volume name '/etc'"),
        ("type=volume,source=a/b,target=/x", "invalid volume name 'a/b'"),
        ("type=volume,source=..,target=/x", "invalid volume name '..'"),
        ("type=tmpfs,source=x,target=/x", "a tmpfs mount takes no source"),
        ("type=bind,source=/a,target=/x,tmpfs-size=1m", "only for tmpfs mounts"),
        ("type=bind,source=/a,target=/x,volume-nocopy", "volume-nocopy is only for volume mounts"),
        ("type=tmpfs,target=/x,tmpfs-size=lots", "invalid tmpfs-size"),
        ("type=tmpfs,target=/x,tmpfs-mode=999", "expected an octal mode"),
        ("type=tmpfs,target=/x,tmpfs-mode=17777", "at most 7777"),
        ("type=volume,target=/x,bind-propagation=shared", "bind-propagation is only for bind mounts, not volume"),
        ("type=bind,source=/a,target=/x,bind-propagation=sideways", "invalid bind-propagation 'sideways': use one of"),
        ("type=bind,source=/a,target=/x,volume-subpath=a", "volume-subpath is only for volume mounts, not bind"),
        ("type=volume,source=v,target=/x,volume-subpath=../etc", "invalid volume subpath '../etc': must be a relative"),
        ("type=volume,source=v,target=/x,volume-subpath=a/../../etc", "without '..'"),
        ("type=volume,source=v,target=/x,volume-subpath=/etc", "invalid volume subpath '/etc'"),
        ("type=volume,source=v,target=/x,volume-subpath=a\x00b", "contains a NUL byte"),
        ("type=volume,target=/x,volume-driver=nfs", "mount option 'volume-driver' is not supported"),
        ("type=volume,target=/x,colour=red", "unexpected key 'colour'"),
        ("type=volume,target=/x,readonly=maybe", "use true or false"),
        ("type=volume,source={{.Task.Slots}},target=/x", "unknown field"),
    ],
)
def test_a_bad_mount_is_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(MountError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        mountspec.parse(text)


def test_volume_subpath_and_bind_propagation_are_kept_normalized() -> None:
    vol = mountspec.parse("type=volume,source=data,target=/x,volume-subpath=./app//logs/")
    assert (vol["volume_subpath"], vol["bind_propagation"]) == ("app/logs", "")
    assert mountspec.parse("type=volume,source=data,target=/x,volume-subpath=.")["volume_subpath"] == ""
    for mode in mountspec.PROPAGATIONS:
        bind = mountspec.parse(f"type=bind,source=/srv,target=/x,bind-propagation={mode.upper()}")
        assert (bind["bind_propagation"], bind["volume_subpath"]) == (mode, "")
    assert mountspec.normalize(bind) == bind, "normalizing twice changes nothing"


def test_templates_are_checked_as_they_would_expand_and_kept_as_written() -> None:
    m = mountspec.parse("type=volume,source=data-{{.Task.Slot}},target=/data/{{ .Service.Name }}")
    assert (m["source"], m["target"]) == ("data-{{.Task.Slot}}", "/data/{{ .Service.Name }}")
    with pytest.raises(MountError, match="invalid volume name"):
        mountspec.parse("type=volume,source=x/{{.Task.Slot}},target=/data")
    with pytest.raises(MountError, match="absolute"):
        mountspec.parse("type=bind,source={{.Node.Hostname}},target=/data")


def test_short_volume_syntax() -> None:
    assert mountspec.parse_volume("/h:/c:ro") == mountspec.parse("type=bind,src=/h,dst=/c,ro")
    assert mountspec.parse_volume("vol:/c")["type"] == "volume"
    for bad in ("/only", "a:/b:rx", ":/b"):
        with pytest.raises(MountError):
            mountspec.parse_volume(bad)


def test_two_mounts_on_one_target_are_refused_after_normalizing() -> None:
    with pytest.raises(MountError, match="duplicate mount point: /a"):
        mountspec.normalize_all([{"type": "tmpfs", "target": "/a"}, {"type": "volume", "source": "v", "target": "/a/"}])


def test_clean_path() -> None:
    assert mountspec.clean_path("x", "//a/./b/") == "/a/b"
    with pytest.raises(MountError, match="NUL"):
        mountspec.clean_path("x", "/a\x00b")
