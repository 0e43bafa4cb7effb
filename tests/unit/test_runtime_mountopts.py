"""The node-side rules of a volume's subpath and a bind's propagation (runtime/launcher/child/mountopts.py),
on plain directories and a mountinfo text: no root, no container."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shoal.runtime import linux
from shoal.runtime.errors import ConfigError
from shoal.runtime.launcher.child import mountopts

MOUNTINFO = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
42 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw
50 27 0:40 / /srv/shared rw shared:7 - tmpfs tmpfs rw
51 50 0:41 / /srv/shared/slave rw master:7 - tmpfs tmpfs rw
52 27 0:42 / /srv/with\\040space rw shared:9 master:3 - tmpfs tmpfs rw
"""


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    v = tmp_path / "vol" / "_data"
    v.mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    return v


def _path_of(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def test_a_missing_subpath_is_made_inside_the_volume(volume: Path) -> None:
    assert _path_of(mountopts.open_subpath(str(volume), "logs/a")) == str(volume / "logs" / "a")
    assert (volume / "logs" / "a").is_dir()
    assert _path_of(mountopts.open_subpath(str(volume), "logs/a")) == str(volume / "logs" / "a"), "an existing one is reused"


def test_a_symlink_inside_the_volume_is_followed_one_leading_out_is_refused(volume: Path) -> None:
    (volume / "real").mkdir()
    (volume / "alias").symlink_to("real")
    assert _path_of(mountopts.open_subpath(str(volume), "alias")) == str(volume / "real")
    for name, target in (("abs", "/"), ("up", "../.."), ("sneaky", "real/../../../outside")):
        (volume / name).symlink_to(target)
        with pytest.raises(ConfigError, match=f"volume subpath '{name}/x' leads out of the volume"):
            mountopts.open_subpath(str(volume), f"{name}/x")
    assert not (volume.parent.parent / "outside" / "x").exists(), "nothing was made outside"


def test_a_subpath_that_is_a_file_is_refused(volume: Path) -> None:
    (volume / "file").write_text("x")
    with pytest.raises(ConfigError, match="'file' is not a directory inside the volume"):
        mountopts.open_subpath(str(volume), "file")


def test_the_mount_holding_a_path_and_its_propagation(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    assert mountopts.mount_info("/srv/shared/a/b", str(info)) == ("/srv/shared", ["shared:7"])
    assert mountopts.mount_info("/srv/shared/slave", str(info)) == ("/srv/shared/slave", ["master:7"])
    assert mountopts.mount_info("/srv/sharedx", str(info)) == ("/", [])
    assert mountopts.mount_info("/srv/with space/d", str(info)) == ("/srv/with space", ["shared:9", "master:3"])


def test_docker_refuses_shared_or_slave_on_a_private_mount(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    real = mountopts.mount_info
    monkeypatch.setattr(mountopts, "mount_info", lambda path: real(path, str(info)))
    for mode in ("", "private", "rprivate"):
        mountopts.check_source("/home", mode)
    for mode in ("shared", "rshared", "slave", "rslave"):
        mountopts.check_source("/srv/shared/x", mode)
        with pytest.raises(ConfigError, match=f"path /home is mounted on / but it is not a shared.*{mode}"):
            mountopts.check_source("/home", mode)
    mountopts.check_source("/srv/shared/slave", "rslave")
    with pytest.raises(ConfigError, match="path /srv/shared/slave is mounted on /srv/shared/slave but it is not a shared mount"):
        mountopts.check_source("/srv/shared/slave", "rshared")


def test_the_namespace_is_rslave_only_when_a_bind_asks_for_shared_or_slave() -> None:
    private = linux.MS_PRIVATE | linux.MS_REC
    assert mountopts.root_flags([]) == private
    assert mountopts.root_flags([{"type": "bind", "bind_propagation": "rprivate"}, {"type": "volume"}]) == private
    for mode in ("shared", "rshared", "slave", "rslave"):
        assert mountopts.root_flags([{"type": "bind", "bind_propagation": mode}]) == linux.MS_SLAVE | linux.MS_REC
    assert mountopts.FLAGS["rshared"] == mountopts.MS_SHARED | linux.MS_REC
