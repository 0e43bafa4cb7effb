"""launcher/resolve.py: a validated spec combined with its image at create (argv, full env, user from
the image's /etc/passwd, layers, volume paths), on a small image store in a temporary directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shoal.runtime import ConfigError, ContainerConfig, ImageNotFound
from shoal.runtime.image.store import Image, ImageStore
from shoal.runtime.launcher.resolve import Resolved, resolve
from shoal.runtime.launcher.volumes import VolumeStore
from shoal.runtime.spec import DEFAULT_PATH, validate

PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
GROUP = "root:x:0:\napp:x:1000:\nstaff:x:50:app\n"
BASE, TOP = "sha256:" + "1" * 64, "sha256:" + "2" * 64


@pytest.fixture
def stores(tmp_path: Path) -> tuple[ImageStore, VolumeStore]:
    images = ImageStore(str(tmp_path / "images"))
    base = Path(images.layer_path(BASE))
    (base / "etc").mkdir(parents=True)
    (base / "etc/passwd").write_text(PASSWD)
    (base / "etc/group").write_text(GROUP)
    for name in ("proc", "dev", "sys"):
        (base / name).mkdir()
    Path(images.layer_path(TOP)).mkdir(parents=True)
    config = {
        "config": {
            "Entrypoint": ["/bin/app"], "Cmd": ["--serve"], "Env": ["PATH=/app/bin", "MODE=prod"],
            "WorkingDir": "srv", "User": "app",
        }
    }  # fmt: skip
    with images.locked():
        images.commit(Image("sha256:" + "a" * 64, ["app:1"], [BASE, TOP], config))
    return images, VolumeStore(str(tmp_path / "volumes"))


def spec(**kw: object):  # type: ignore[no-untyped-def]
    base: dict[str, object] = {"id": "c1", "image": "app:1"}
    base.update(kw)
    return validate(ContainerConfig(**base))  # type: ignore[arg-type]


def test_an_image_container_takes_the_images_settings(stores: tuple[ImageStore, VolumeStore]) -> None:
    images, volumes = stores
    res = resolve(spec(env=["MODE=dev"]), images, volumes)
    assert res.argv == ["/bin/app", "--serve"]
    assert res.env == ["HOSTNAME=c1", "PATH=/app/bin", "MODE=dev", "HOME=/home/app"]
    assert res.workdir == "/srv", "a relative WorkingDir is taken from /"
    assert (res.uid, res.gid, res.groups, res.home) == (1000, 1000, [50], "/home/app")
    assert res.image_id == "sha256:" + "a" * 64
    assert res.lowerdirs == [images.layer_path(TOP), images.layer_path(BASE)]
    assert res.api_dirs, "/proc, /dev and /sys are directories in the base layer"


def test_the_containers_settings_win(stores: tuple[ImageStore, VolumeStore]) -> None:
    images, volumes = stores
    res = resolve(spec(entrypoint=["/bin/sh"], args=["-c", "id"], user="0:50", workdir="/tmp"), images, volumes)
    assert res.argv == ["/bin/sh", "-c", "id"], "an entrypoint override drops the image's Cmd"
    assert (res.uid, res.gid, res.home, res.workdir) == (0, 50, "/root", "/tmp")


def test_a_user_missing_from_the_image_is_a_config_error(stores: tuple[ImageStore, VolumeStore]) -> None:
    with pytest.raises(ConfigError, match="unable to find user ghost"):
        resolve(spec(user="ghost"), *stores)


def test_an_unknown_image_is_image_not_found(stores: tuple[ImageStore, VolumeStore]) -> None:
    with pytest.raises(ImageNotFound, match="image nope:1 not found"):
        resolve(spec(image="nope:1"), *stores)


def test_the_host_image_uses_the_hosts_users_and_no_layers(stores: tuple[ImageStore, VolumeStore]) -> None:
    res = resolve(spec(image="host", args=["true"]), *stores)
    assert res.argv == ["true"] and res.lowerdirs == [] and not res.api_dirs and res.image_id == "host"
    assert res.env == [f"PATH={DEFAULT_PATH}", "HOSTNAME=c1", "HOME=/root"]
    with pytest.raises(ConfigError, match="no command specified"):
        resolve(spec(image="host"), *stores)


def test_volumes_are_created_and_bind_sources_must_exist(
    stores: tuple[ImageStore, VolumeStore], tmp_path: Path
) -> None:
    images, volumes = stores
    mounts = [{"type": "volume", "source": "data", "target": "/data"}, {"type": "bind", "source": str(tmp_path), "target": "/h"}]
    s = spec(mounts=mounts)
    res = resolve(s, images, volumes)
    data = res.mounts[0]
    assert data["volume"] == "data" and data["source"] == volumes.get("data").mountpoint
    assert os.path.isdir(data["source"])
    assert res.mounts[1]["source"] == str(tmp_path)
    assert s.mounts[0]["source"] == "data", "the spec itself is left as the client sent it"
    with pytest.raises(ConfigError, match="bind source path does not exist"):
        resolve(spec(mounts=[{"type": "bind", "source": str(tmp_path / "gone"), "target": "/g"}]), images, volumes)


def test_the_top_layers_passwd_file_wins(stores: tuple[ImageStore, VolumeStore]) -> None:
    images, volumes = stores
    top = Path(images.layer_path(TOP))
    (top / "etc").mkdir()
    (top / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    with pytest.raises(ConfigError, match="unable to find user app"):
        resolve(spec(), images, volumes)


def test_resolved_round_trips_through_its_dict(stores: tuple[ImageStore, VolumeStore]) -> None:
    res = resolve(spec(), *stores)
    assert Resolved.from_dict(res.to_dict()) == res


# ---- docker create options: supplementary groups, anonymous and named volumes ----


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
