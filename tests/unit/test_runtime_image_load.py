"""``image load`` into an image store on disk, without a runtime: every format the fixtures build, the blobs
a manager keeps, the caps of one load, and the store left as it was when anything is wrong.

Tarballs come from tests/fixtures/busybox_image.py (docker save or OCI layout, gzip outer or per layer,
extra layers with whiteouts); the store is a tmp dir.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from shoal.runtime import ImageLoadError
from shoal.runtime.image import load as imageload
from shoal.runtime.image.extract import LayerLimits
from shoal.runtime.image.store import ImageStore, hex_of
from tests.fixtures import busybox_image
from tests.fixtures.busybox_image import OPAQUE, WHITEOUT

pytestmark = pytest.mark.skipif(not os.path.exists(busybox_image.BUSYBOX), reason="needs Debian's busybox-static")


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(str(tmp_path / "images"))


def build(tmp_path: Path, name: str, **kw: object) -> tuple[str, str]:
    path = str(tmp_path / f"{name}.tar")
    return path, busybox_image.build(path, **kw)  # type: ignore[arg-type]


def state_of(store: ImageStore) -> set[str]:
    """Every path in the store but its scratch dir: what a failed load must leave untouched."""
    root = Path(store.root)
    return {str(p.relative_to(root)) for p in root.rglob("*") if "tmp" not in p.relative_to(root).parts}


def test_a_docker_save_tarball_loads_with_its_tag_and_layers(store, tmp_path):
    path, image_id = build(tmp_path, "plain")
    assert imageload.load(store, path) == ["Loaded image: busybox:latest"]
    (img,) = store.images()
    assert img.id == image_id and img.repo_tags == ["busybox:latest"]
    (lower,) = store.lowerdirs(img)
    assert os.path.islink(os.path.join(lower, "bin/sh")) and os.path.isfile(os.path.join(lower, "bin/busybox"))
    assert img.size > 0


@pytest.mark.parametrize("kw", [{"oci": True}, {"oci": True, "gzip_outer": True, "gzip_layers": True},
                                {"gzip_outer": True}, {"gzip_layers": True}])
def test_oci_layouts_and_gzip_load_the_same_image(store, tmp_path, kw):
    path, image_id = build(tmp_path, "variant", tag="bb:1", **kw)
    imageload.load(store, path)
    assert [i.id for i in store.images()] == [image_id]
    assert store.get("bb:1").id == image_id


def test_later_layers_delete_files_and_make_directories_opaque(store, tmp_path):
    extra = [
        {"etc/app.conf": b"v1", "data/": b"", "data/old": b"x", "gone": b"bye"},
        {"gone": WHITEOUT, "data/": OPAQUE, "data/new": b"y", "etc/app.conf": b"v2"},
    ]
    path, _ = build(tmp_path, "layered", tag="layered:1", extra_layers=extra)
    imageload.load(store, path)
    img = store.get("layered:1")
    top = store.lowerdirs(img)[0]
    assert len(store.lowerdirs(img)) == 3, "top first"
    assert Path(top, "etc/app.conf").read_bytes() == b"v2"
    wh = os.lstat(os.path.join(top, "gone"))
    assert wh.st_rdev == 0 and (wh.st_mode & 0o170000) == 0o020000, "a whiteout is a 0:0 character device for overlayfs"
    assert os.getxattr(os.path.join(top, "data"), "trusted.overlay.opaque") == b"y"


def test_loading_the_same_image_twice_keeps_one_copy(store, tmp_path):
    path, _ = build(tmp_path, "twice")
    imageload.load(store, path)
    before = state_of(store)
    imageload.load(store, path)
    assert len(store.images()) == 1 and state_of(store) == before


def test_a_wrong_diff_id_is_refused_and_the_store_is_left_as_it_was(store, tmp_path):
    good, _ = build(tmp_path, "good")
    imageload.load(store, good)
    before = state_of(store)
    bad, _ = build(tmp_path, "bad", tag="bad:1", corrupt_diff_id=True, extra_layers=[{"x": b"1"}])
    with pytest.raises(ImageLoadError):
        imageload.load(store, bad)
    assert state_of(store) == before
    assert os.listdir(store.tmp_dir) == [], "the scratch dir is cleaned"


@pytest.mark.parametrize(("content", "words"), [(b"not a tar at all" * 100, "invalid image archive"),
                                                 (b"", "invalid image archive")])
def test_something_that_is_not_an_image_archive_is_one_clear_error(store, tmp_path, content, words):
    path = tmp_path / "junk.tar"
    path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=words):
        imageload.load(store, str(path))
    assert store.images() == []


def test_a_tarball_without_a_manifest_is_refused(store, tmp_path):
    path = tmp_path / "empty.tar"
    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo("hello.txt")
        info.size = 0
        tf.addfile(info)
    with pytest.raises(ImageLoadError):
        imageload.load(store, str(path))


def test_a_load_past_its_byte_or_entry_cap_is_refused(store, tmp_path):
    path, _ = build(tmp_path, "capped")
    with pytest.raises(ImageLoadError, match="larger than 1000 bytes"):
        imageload.load_images(store, path, limits=LayerLimits(max_bytes=1000))
    with pytest.raises(ImageLoadError):
        imageload.load_images(store, path, limits=LayerLimits(max_entries=3))
    assert store.images() == []


def test_a_manager_keeps_each_new_layers_tar_as_a_blob_named_by_its_diff_id(store, tmp_path):
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    path, _ = build(tmp_path, "withblobs", extra_layers=[{"etc/x": b"x"}])
    lines, images = imageload.load_images(store, path, str(blobs))
    assert lines == ["Loaded image: busybox:latest"]
    kept = {p.name for p in blobs.iterdir()}
    assert kept == {hex_of(d) for d in images[0].layers}


def test_a_pulled_layer_is_added_once_it_matches_its_diff_id(store, tmp_path):
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    path, _ = build(tmp_path, "src")
    source = ImageStore(str(tmp_path / "source"))
    _, (img,) = imageload.load_images(source, path, str(blobs))
    diff_id = img.layers[0]
    imageload.add_layer(store, diff_id, str(blobs / hex_of(diff_id)))
    assert store.has_layer(diff_id)
    assert os.path.isfile(os.path.join(store.layer_path(diff_id), "bin/busybox"))
    imageload.add_layer(store, diff_id, "/nonexistent")  # already there: nothing to read


def test_a_pulled_layer_that_does_not_match_is_refused_and_not_stored(store, tmp_path):
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    path, _ = build(tmp_path, "src2")
    _, (img,) = imageload.load_images(ImageStore(str(tmp_path / "source")), path, str(blobs))
    wrong = "sha256:" + "0" * 64
    with pytest.raises(ImageLoadError, match="layer sha256:0000"):
        imageload.add_layer(store, wrong, str(blobs / hex_of(img.layers[0])))
    assert not store.has_layer(wrong) and os.listdir(store.tmp_dir) == []
