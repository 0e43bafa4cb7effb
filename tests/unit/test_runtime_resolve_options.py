"""launcher/resolve.py with docker's create options: supplementary groups from the image's /etc/group,
anonymous volumes named after their container, and named volumes created on first use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shoal.runtime import ConfigError
from shoal.runtime.image.store import ImageStore
from shoal.runtime.launcher.resolve import resolve
from shoal.runtime.launcher.volumes import VolumeStore
from tests.unit.test_runtime_resolve import spec, stores  # noqa: F401  # the fixture is used by name

_ = stores


def test_group_add_names_resolve_in_the_images_group_file(stores: tuple[ImageStore, VolumeStore]) -> None:
    images, volumes = stores
    res = resolve(spec(group_add=["staff", "4242"]), images, volumes)
    assert (res.uid, res.gid) == (1000, 1000) and res.groups == [50, 4242]
    assert resolve(spec(), images, volumes).groups == [50], "app is in staff by the group file already"
    with pytest.raises(ConfigError, match="unable to find group wheel"):
        resolve(spec(group_add=["wheel"]), images, volumes)


def test_host_image_groups_come_from_the_hosts_group_file(stores: tuple[ImageStore, VolumeStore]) -> None:
    images, volumes = stores
    res = resolve(spec(image="host", args=["true"], user="0", group_add=["0", "12345"]), images, volumes)
    assert res.uid == 0 and 12345 in res.groups


def test_volumes_named_and_anonymous_are_made_on_first_use(stores: tuple[ImageStore, VolumeStore], tmp_path: Path) -> None:
    images, volumes = stores
    mounts = [{"type": "volume", "source": "data", "target": "/data"}, {"type": "volume", "target": "/cache", "volume_nocopy": True}]
    res = resolve(spec(id="c9", mounts=mounts), images, volumes)
    named, anon = res.mounts
    assert (named["volume"], named["source"]) == ("data", os.path.join(str(tmp_path / "volumes"), "data", "_data"))
    assert anon["volume"] == "c9" and anon["volume_nocopy"] and os.path.isdir(anon["source"])
    assert sorted(v.name for v in volumes.list()) == ["c9", "data"]


def test_a_missing_bind_source_is_refused_before_any_volume_is_made(stores: tuple[ImageStore, VolumeStore], tmp_path: Path) -> None:
    images, volumes = stores
    mounts = [{"type": "bind", "source": str(tmp_path / "absent"), "target": "/x"}, {"type": "volume", "source": "v", "target": "/v"}]
    with pytest.raises(ConfigError, match="bind source path does not exist"):
        resolve(spec(mounts=mounts), images, volumes)
    assert volumes.list() == []
