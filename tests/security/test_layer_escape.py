"""Exploits: an image layer that writes outside its own directory (issue 11, High 1).

Each attack is a layer tarball the test builds, fed through every path into the layer store: a local
``image load``, the manager's ``image load --cluster`` (which also keeps each layer's tar as a blob)
and a worker's layer pull (``add_layer``). The "host" files they aim at live in the test's tmp dir.
Before the fix, extraction followed a symlink the same layer had just made: (a) a file written
through it overwrote the host file, (b) a directory entry through it changed the host directory's
mode and owner, (c) a hard link through it linked to the host file and chmodded it 04777.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from shoal.runtime import linux
from shoal.runtime.errors import ImageLoadError
from shoal.runtime.image import load
from shoal.runtime.image.extract import LayerLimits, extract_layer
from shoal.runtime.image.store import ImageStore

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: layers set owners and device nodes")

SYM, DIR, REG, LNK = tarfile.SYMTYPE, tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.LNKTYPE


def layer_tar(*entries: dict) -> bytes:
    """Entries as dicts: name, type, and optionally data, link, mode, uid, gid, devmajor/devminor."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e["name"])
            info.type = e.get("type", REG)
            info.mode = e.get("mode", 0o644)
            info.uid, info.gid = e.get("uid", 0), e.get("gid", 0)
            info.linkname = e.get("link", "")
            info.devmajor, info.devminor = e.get("devmajor", 0), e.get("devminor", 0)
            data = e.get("data", b"")
            info.size = len(data) if info.type == REG else 0
            tar.addfile(info, io.BytesIO(data) if info.type == REG else None)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def archive_of(path: Path, layer: bytes) -> str:
    """A docker-save tarball of a one-layer image; returns the layer's diff_id."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}})
    image_id = sha(config.encode())[7:]
    files = {
        "l/layer.tar": layer,
        f"{image_id}.json": config.encode(),
        "manifest.json": json.dumps([{"Config": f"{image_id}.json", "RepoTags": ["evil:1"], "Layers": ["l/layer.tar"]}]).encode(),
    }
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return sha(layer)


def via_image_load(tmp: Path, layer: bytes) -> ImageStore:
    store = ImageStore(str(tmp / "store"))
    archive_of(tmp / "img.tar", layer)
    load.load(store, str(tmp / "img.tar"))
    return store


def via_cluster_load(tmp: Path, layer: bytes) -> ImageStore:
    store = ImageStore(str(tmp / "cluster-images"))
    archive_of(tmp / "img.tar", layer)
    load.load_images(store, str(tmp / "img.tar"), str(tmp / "cluster-images" / "blobs"))
    return store


def via_layer_pull(tmp: Path, layer: bytes) -> ImageStore:
    store = ImageStore(str(tmp / "worker-images"))
    (tmp / "pulled.tar").write_bytes(layer)
    load.add_layer(store, sha(layer), str(tmp / "pulled.tar"))
    return store


PATHS = pytest.mark.parametrize("entry_point", [via_image_load, via_cluster_load, via_layer_pull], ids=["load", "cluster", "pull"])
Loader = Callable[[Path, bytes], ImageStore]


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """Stand-ins for host files: a file with content, a 0700 root-owned directory."""
    h = tmp_path / "host"
    h.mkdir()
    (h / "victim.txt").write_text("precious\n")
    os.chmod(h / "victim.txt", 0o644)
    (h / "dir").mkdir(mode=0o700)
    os.chmod(h / "dir", 0o700)
    return h


def layer_dir(store: ImageStore, layer: bytes) -> Path:
    return Path(store.layer_path(sha(layer)))


@PATHS
def test_a_symlink_then_a_file_does_not_overwrite_the_host_file(tmp_path: Path, host: Path, entry_point: Loader) -> None:
    layer = layer_tar(
        {"name": "victim", "type": SYM, "link": str(host / "victim.txt")},
        {"name": "victim", "data": b"pwned\n"},
    )
    store = entry_point(tmp_path, layer)
    assert (host / "victim.txt").read_text() == "precious\n"
    inside = layer_dir(store, layer) / "victim"
    assert not inside.is_symlink() and inside.read_text() == "pwned\n", "the file replaces the symlink"


@PATHS
def test_a_symlink_then_a_directory_does_not_change_the_host_directory(tmp_path: Path, host: Path, entry_point: Loader) -> None:
    layer = layer_tar(
        {"name": "d", "type": SYM, "link": str(host / "dir")},
        {"name": "d", "type": DIR, "mode": 0o777, "uid": 4242, "gid": 4242},
    )
    store = entry_point(tmp_path, layer)
    st = os.stat(host / "dir")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o700, 0, 0)
    inside = os.lstat(layer_dir(store, layer) / "d")
    assert stat.S_ISDIR(inside.st_mode) and (stat.S_IMODE(inside.st_mode), inside.st_uid) == (0o777, 4242)


@PATHS
def test_a_hard_link_through_a_symlink_cannot_reach_or_chmod_a_host_file(tmp_path: Path, host: Path, entry_point: Loader) -> None:
    layer = layer_tar(
        {"name": "s", "type": SYM, "link": str(host)},
        {"name": "h", "type": LNK, "link": "s/victim.txt", "mode": 0o4777},
    )
    with pytest.raises(ImageLoadError, match="hard link h .*out of the layer"):
        entry_point(tmp_path, layer)
    st = os.stat(host / "victim.txt")
    assert (stat.S_IMODE(st.st_mode), st.st_nlink) == (0o644, 1)


@PATHS
def test_a_file_below_a_symlink_out_of_the_layer_is_refused(tmp_path: Path, host: Path, entry_point: Loader) -> None:
    layer = layer_tar({"name": "s", "type": SYM, "link": "../../../../../../../.." + str(host)}, {"name": "s/new", "data": b"x"})
    with pytest.raises(ImageLoadError, match="s/new.*out of the layer"):
        entry_point(tmp_path, layer)
    assert not (host / "new").exists()


@pytest.mark.parametrize("name", [".wh..", ".wh...", "a/.wh...", ".wh.", "a/.wh..wh.x", "a/.wh..wh..opq/b"])
def test_whiteouts_of_dot_dotdot_or_metadata_names_are_refused(tmp_path: Path, name: str) -> None:
    """``.wh...`` named the layer's parent: the old code removed the whole directory above the layer."""
    outer = tmp_path / "outer"
    outer.mkdir()
    (outer / "sentinel").write_text("keep\n")
    layer = layer_tar({"name": "a", "type": DIR, "mode": 0o755}, {"name": name})
    with pytest.raises(ImageLoadError, match="whiteout"):
        extract_layer(io.BytesIO(layer), "l", str(outer / "layer"), sha(layer), "", None)
    assert (outer / "sentinel").read_text() == "keep\n"


def test_device_nodes_in_a_layer_are_not_kept(tmp_path: Path) -> None:
    layer = layer_tar(
        {"name": "sda", "type": tarfile.BLKTYPE, "devmajor": 8, "devminor": 0},
        {"name": "mem", "type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 1},
        {"name": "fifo", "type": tarfile.FIFOTYPE},
    )
    dest = tmp_path / "layer"
    extract_layer(io.BytesIO(layer), "l", str(dest), sha(layer), "", None)
    assert sorted(os.listdir(dest)) == ["fifo"]


def test_uncompressed_size_and_entry_count_are_capped(tmp_path: Path) -> None:
    big = layer_tar({"name": "zeros", "data": bytes(1 << 20)})
    with pytest.raises(ImageLoadError, match="larger than"):
        extract_layer(io.BytesIO(big), "l", str(tmp_path / "a"), sha(big), "", None, LayerLimits(max_bytes=1 << 19))
    many = layer_tar(*({"name": f"f{i}"} for i in range(50)))
    with pytest.raises(ImageLoadError, match="more than 20 entries"):
        extract_layer(io.BytesIO(many), "l", str(tmp_path / "b"), sha(many), "", None, LayerLimits(max_entries=20))


@PATHS
def test_a_refused_layer_leaves_nothing_in_the_store(tmp_path: Path, host: Path, entry_point: Loader) -> None:
    layer = layer_tar({"name": "ok", "data": b"1"}, {"name": "s", "type": SYM, "link": "/"}, {"name": "h", "type": LNK, "link": "s/etc/passwd"})
    with pytest.raises(ImageLoadError):
        entry_point(tmp_path, layer)
    for root in ("store", "cluster-images", "worker-images"):
        store = ImageStore(str(tmp_path / root))
        assert not os.path.exists(store.layers_dir) or os.listdir(store.layers_dir) == []
        assert not os.path.exists(store.tmp_dir) or os.listdir(store.tmp_dir) == []


def test_a_gzip_bomb_of_an_outer_archive_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    layer = layer_tar({"name": "zeros", "data": bytes(4 << 20)})
    archive_of(tmp_path / "img.tar", layer)
    (tmp_path / "img.tar.gz").write_bytes(gzip.compress((tmp_path / "img.tar").read_bytes()))
    store = ImageStore(str(tmp_path / "store"))
    with pytest.raises(ImageLoadError, match="larger than"):
        load.load_images(store, str(tmp_path / "img.tar.gz"), limits=LayerLimits(max_bytes=1 << 20))
    assert os.listdir(store.layers_dir) == [] and os.listdir(store.tmp_dir) == []


def test_without_openat2_the_walk_refuses_every_symlink_on_the_way(tmp_path: Path, host: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernels before 5.6: the fallback walk must be as confined (here: stricter) as openat2."""

    def enosys(*_: object, **__: object) -> int:
        raise OSError(errno.ENOSYS, "openat2")

    monkeypatch.setattr(linux, "openat2", enosys)
    for i, entries in enumerate([
        ({"name": "d", "type": SYM, "link": str(host / "dir")}, {"name": "d", "type": DIR, "mode": 0o777, "uid": 4242}),
        ({"name": "s", "type": SYM, "link": str(host)}, {"name": "s/new", "data": b"x"}),
        ({"name": "s", "type": SYM, "link": str(host)}, {"name": "h", "type": LNK, "link": "s/victim.txt", "mode": 0o4777}),
    ]):
        layer = layer_tar(*entries)
        try:
            extract_layer(io.BytesIO(layer), "l", str(tmp_path / f"l{i}"), sha(layer), "", None)
        except ImageLoadError as exc:
            assert "out of the layer" in str(exc)
    assert stat.S_IMODE(os.stat(host / "dir").st_mode) == 0o700 and os.stat(host / "dir").st_uid == 0
    assert not (host / "new").exists()
    assert stat.S_IMODE(os.stat(host / "victim.txt").st_mode) == 0o644
