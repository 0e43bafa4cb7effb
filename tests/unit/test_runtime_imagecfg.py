"""Pure image, mount and capability logic: references, docker's config precedence, -v/--mount, caps."""

from __future__ import annotations

import pytest

from shoal.runtime import caps, mounts
from shoal.runtime.errors import ConfigError
from shoal.runtime.image import config as imagecfg
from shoal.runtime.image import ref as imageref


@pytest.mark.parametrize(
    "text,expected",
    [
        ("busybox", "busybox:latest"),
        ("busybox:1.36", "busybox:1.36"),
        ("library/busybox", "library/busybox:latest"),
        ("localhost:5000/app:v2", "localhost:5000/app:v2"),
        ("busybox@sha256:" + "a" * 64, "busybox@sha256:" + "a" * 64),
        ("sha256:" + "b" * 64, "b" * 64),
        ("0123456789ab", "0123456789ab"),
    ],
)
def test_parse_ref(text: str, expected: str) -> None:
    assert str(imageref.parse_ref(text)) == expected


@pytest.mark.parametrize("text", ["", "Busybox", "busybox:", "a b", "busybox@sha256:xyz", "-x"])
def test_bad_refs_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="invalid reference format"):
        imageref.parse_ref(text)


def test_argv_follows_docker_precedence() -> None:
    entry, cmd = ["/entry", "-x"], ["default"]
    assert imagecfg.argv(None, [], entry, cmd) == ["/entry", "-x", "default"]
    assert imagecfg.argv(None, ["mine"], entry, cmd) == ["/entry", "-x", "mine"]
    assert imagecfg.argv(["/other"], [], entry, cmd) == ["/other"]  # --entrypoint drops the image's Cmd
    assert imagecfg.argv(["/other"], ["a"], entry, cmd) == ["/other", "a"]
    assert imagecfg.argv([""], ["sh"], entry, cmd) == ["sh"]  # --entrypoint "" resets it
    assert imagecfg.argv(None, [], None, ["sh"]) == ["sh"]
    with pytest.raises(ConfigError, match="no command specified"):
        imagecfg.argv(None, [], None, None)


def test_env_workdir_user_merge() -> None:
    assert imagecfg.merge_env(["PATH=/bin", "A=1"], ["A=2", "B=3"]) == ["PATH=/bin", "A=2", "B=3"]
    assert imagecfg.workdir("", "/srv") == "/srv"
    assert imagecfg.workdir("/x", "/srv") == "/x"
    assert imagecfg.workdir("", None) == "/"
    assert imagecfg.user("", "app") == "app" and imagecfg.user("0", "app") == "0"


def test_mount_syntaxes() -> None:
    assert mounts.parse_mount("type=bind,src=/a,dst=/b,readonly") == {
        "type": "bind", "source": "/a", "target": "/b", "readonly": True, "tmpfs_size": 0, "tmpfs_mode": 0,
        "volume_nocopy": False, "volume_subpath": "", "bind_propagation": "",
    }  # fmt: skip
    assert mounts.parse_mount("type=tmpfs,dst=/t,tmpfs-size=64m")["tmpfs_size"] == 64 << 20
    assert mounts.parse_mount("source=data,target=/data")["type"] == "volume"
    assert mounts.parse_volume("/h:/c:ro") == mounts.parse_mount("type=bind,src=/h,dst=/c,ro")
    assert mounts.parse_volume("vol:/c")["type"] == "volume"
    for bad in ("type=nfs,dst=/x", "type=bind,src=rel,dst=/x", "type=bind,src=/a,dst=rel", "type=volume,src=a/b,dst=/x",
                "type=tmpfs,src=/a,dst=/x", "type=bind,src=/a,dst=/proc", "colour=red"):  # fmt: skip
        with pytest.raises(ConfigError):
            mounts.parse_mount(bad)
    for bad in ("/only", "a:/b:rx", ":/b"):
        with pytest.raises(ConfigError):
            mounts.parse_volume(bad)
    with pytest.raises(ConfigError, match="duplicate mount point"):
        mounts.validate_all([mounts.parse_volume("/a:/x"), mounts.parse_volume("v:/x")])
    with pytest.raises(ConfigError, match="bind source path does not exist"):
        mounts.check_sources([mounts.parse_volume("/definitely/not/here:/x")])


def test_cap_add_and_drop() -> None:
    default = caps.DOCKER_DEFAULT_MASK
    assert caps.adjust([], []) == default
    net_admin = 1 << caps.CAP_NUMBERS["CAP_NET_ADMIN"]
    assert caps.adjust(["NET_ADMIN"], []) == default | net_admin
    assert caps.adjust([], ["cap_chown"]) == default & ~1
    assert caps.adjust(["NET_RAW"], ["ALL"]) == 1 << caps.CAP_NUMBERS["CAP_NET_RAW"]
    assert caps.adjust(["ALL"], []) == caps.mask(list(caps.CAP_NUMBERS))
    with pytest.raises(ConfigError, match="unknown capability"):
        caps.adjust(["FLY"], [])
