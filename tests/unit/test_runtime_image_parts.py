"""The image package's pure and file-level parts: archive manifests, one layer's extraction with
its whiteouts and digests, and the store's lookups, tags and removal (no container, no launcher)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from shoal.runtime import ConfigError, ImageLoadError, ImageNotFound
from shoal.runtime.image import manifest
from shoal.runtime.image.extract import extract_layer
from shoal.runtime.image.store import Image, ImageStore, find

ROOT = os.geteuid() == 0


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- manifests ------------------------------------------------------------------------------------


def test_docker_manifest_entries() -> None:
    hexid = "a" * 64
    entries = manifest.docker_entries(
        [{"Config": f"{hexid}.json", "RepoTags": ["app:1"], "Layers": ["l1/layer.tar", "l2/layer.tar"]}]
    )
    assert entries == [
        manifest.Entry(f"{hexid}.json", f"sha256:{hexid}", ["app:1"], [("l1/layer.tar", ""), ("l2/layer.tar", "")])
    ]
    odd = manifest.docker_entries([{"Config": "config.json", "RepoTags": None, "Layers": []}])
    assert odd[0].config_digest == "" and odd[0].tags == [], "a config not named by its digest is not checked by name"
    with pytest.raises(ImageLoadError, match="manifest.json must be a list"):
        manifest.docker_entries({"Config": "x"})


def oci_archive(arch: str = "amd64", name: str = "app:1", nested: bool = False) -> tuple[dict, dict[str, bytes]]:
    blobs: dict[str, bytes] = {}

    def put(data: bytes) -> str:
        blobs[f"blobs/sha256/{sha(data)[7:]}"] = data
        return sha(data)

    config = put(b'{"config": {}}')
    layer = put(b"layer bytes")
    mani = json.dumps({"config": {"digest": config}, "layers": [{"digest": layer}]}).encode()
    desc = {"mediaType": manifest.MANIFEST_TYPES[0], "digest": put(mani), "platform": {"architecture": arch}}
    desc["annotations"] = {"io.containerd.image.name": name}
    if nested:
        inner = json.dumps({"manifests": [desc]}).encode()
        return {"manifests": [{"mediaType": manifest.INDEX_TYPES[0], "digest": put(inner)}]}, blobs
    return {"manifests": [desc]}, blobs


def test_oci_index_entries_name_config_layers_and_tag() -> None:
    index, blobs = oci_archive()
    (entry,) = manifest.oci_entries(index, blobs.__getitem__, arch="amd64")
    assert entry.config_name.startswith("blobs/sha256/") and entry.config_digest == sha(b'{"config": {}}')
    assert entry.tags == ["app:1"]
    assert entry.layers == [(f"blobs/sha256/{sha(b'layer bytes')[7:]}", sha(b"layer bytes"))]


def test_oci_nested_index_and_other_architectures() -> None:
    index, blobs = oci_archive(nested=True)
    assert len(manifest.oci_entries(index, blobs.__getitem__, arch="amd64")) == 1
    index, blobs = oci_archive(arch="arm64")
    assert manifest.oci_entries(index, blobs.__getitem__, arch="amd64") == []


def test_oci_ref_name_alone_is_not_a_tag() -> None:
    index, blobs = oci_archive(name="latest")
    assert manifest.oci_entries(index, blobs.__getitem__, arch="amd64")[0].tags == []


def test_oci_blob_with_the_wrong_digest_is_refused() -> None:
    index, blobs = oci_archive()
    name = next(n for n, data in blobs.items() if b'"layers"' in data)
    blobs[name] = blobs[name] + b" "
    with pytest.raises(ImageLoadError, match="digest mismatch"):
        manifest.oci_entries(index, blobs.__getitem__, arch="amd64")


def test_machine_arch_uses_oci_words() -> None:
    assert manifest.machine_arch() == {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


# -- one layer ------------------------------------------------------------------------------------


def tar_of(*entries: tuple[str, bytes | None, bytes]) -> bytes:
    """(name, data or None for a dir, type) entries as an uncompressed tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            if kind == tarfile.REGTYPE:
                info.size = len(data or b"")
                tar.addfile(info, io.BytesIO(data or b""))
            else:
                info.linkname = (data or b"").decode()
                tar.addfile(info)
    return buf.getvalue()


REG, DIR, LNK, SYM = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.LNKTYPE, tarfile.SYMTYPE


def extract(tmp_path: Path, blob: bytes, diff_id: str | None = None, blob_digest: str = "", sink: bool = False) -> tuple[Path, int]:
    dest = tmp_path / "layer"
    sink_path = str(tmp_path / "copy.tar") if sink else None
    size = extract_layer(io.BytesIO(blob), "layer.tar", str(dest), diff_id or sha(blob), blob_digest, sink_path)
    return dest, size


def test_files_dirs_and_links_are_extracted_with_their_size(tmp_path: Path) -> None:
    blob = tar_of(("etc", None, DIR), ("etc/motd", b"hello\n", REG), ("etc/link", b"motd", SYM), ("etc/hard", b"etc/motd", LNK))
    dest, size = extract(tmp_path, blob)
    assert (dest / "etc" / "motd").read_text() == "hello\n"
    assert os.readlink(dest / "etc" / "link") == "motd"
    assert os.stat(dest / "etc" / "hard").st_ino == os.stat(dest / "etc" / "motd").st_ino
    assert size == 6


def test_a_gzip_layer_is_checked_compressed_and_uncompressed(tmp_path: Path) -> None:
    plain = tar_of(("a", b"x", REG))
    packed = gzip.compress(plain, mtime=0)
    dest, _ = extract(tmp_path, packed, diff_id=sha(plain), blob_digest=sha(packed), sink=True)
    assert (dest / "a").read_text() == "x"
    assert (tmp_path / "copy.tar").read_bytes() == plain, "the sink receives the uncompressed tar"


def test_a_wrong_diff_id_or_blob_digest_is_refused(tmp_path: Path) -> None:
    plain = tar_of(("a", b"x", REG))
    with pytest.raises(ImageLoadError, match="digest mismatch: expected sha256:0+, got " + sha(plain)):
        extract(tmp_path, plain, diff_id="sha256:" + "0" * 64)
    (tmp_path / "layer").rename(tmp_path / "first")
    with pytest.raises(ImageLoadError, match="blob digest mismatch"):
        extract(tmp_path, plain, blob_digest="sha256:" + "1" * 64)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ((("../evil", b"x", REG),), "escapes the layer"),
        ((("a/../../evil", b"x", REG),), "escapes the layer"),
        ((("out", b"/", SYM), ("out/evil", b"x", REG)), "goes through a symlink out of the layer"),
        ((("hard", b"../../etc/passwd", LNK),), "points out of the layer"),
    ],
)
def test_entries_that_leave_the_layer_are_refused(tmp_path: Path, entries: tuple, message: str) -> None:
    with pytest.raises(ImageLoadError, match=message):
        extract(tmp_path, tar_of(*entries))
    assert not (tmp_path / "evil").exists()


@pytest.mark.skipif(not ROOT, reason="needs root: whiteouts are 0/0 device nodes, opaque dirs trusted.* xattrs")
def test_oci_whiteouts_become_overlayfs_ones(tmp_path: Path) -> None:
    blob = tar_of(("d", None, DIR), ("d/.wh.gone", b"", REG), ("o", None, DIR), ("o/.wh..wh..opq", b"", REG))
    dest, _ = extract(tmp_path, blob)
    st = os.lstat(dest / "d" / "gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(dest / "o", "trusted.overlay.opaque") == b"y"
    assert not (dest / "d" / ".wh.gone").exists() and not (dest / "o" / ".wh..wh..opq").exists()


# -- the store ------------------------------------------------------------------------------------


def image(n: int, tags: list[str], layers: list[str] | None = None) -> Image:
    return Image(f"sha256:{str(n) * 64}", tags, layers or [f"sha256:{'f' * 63}{n}"], {"config": {"Cmd": ["sh"]}})


def test_find_by_tag_digest_and_id_prefix() -> None:
    images = [image(1, ["app:1", "app:latest"]), image(2, ["db:5"])]
    assert find(images, "app").id == images[0].id, "a bare name means :latest"
    assert find(images, "db:5").id == images[1].id
    assert find(images, f"app@sha256:{'2' * 64}").id == images[1].id, "a digest names the image, whatever the name"
    assert find(images, "111111111111").id == images[0].id
    assert find(images, f"sha256:{'2' * 64}").id == images[1].id
    with pytest.raises(ImageNotFound, match="image db:6 not found"):
        find(images, "db:6")
    with pytest.raises(ImageNotFound, match="invalid reference"):
        find(images, "UPPER")


def test_an_ambiguous_id_prefix_is_an_error() -> None:
    images = [Image("sha256:abc123" + "0" * 58, [], [], {}), Image("sha256:abc123" + "1" * 58, [], [], {})]
    with pytest.raises(ConfigError, match="ambiguous"):
        find(images, "sha256:abc123")


def store_with(tmp_path: Path, *images: Image) -> ImageStore:
    store = ImageStore(str(tmp_path / "images"))
    with store.locked():
        for img in images:
            for diff_id in img.layers:
                os.makedirs(store.layer_path(diff_id), exist_ok=True)
            store.commit(img)
    return store


def test_commit_moves_a_tag_to_the_newer_image(tmp_path: Path) -> None:
    old = image(1, ["app:latest", "app:1"])
    store = store_with(tmp_path, old)
    with store.locked():
        untagged = store.commit(image(2, ["app:latest"]))
    assert untagged == []
    assert store.get("app:latest").id == image(2, []).id and store.get("app:1").id == old.id
    with store.locked():
        assert store.commit(image(3, ["app:1"])) == [old.id], "the old image lost its last tag"


def test_remove_untags_first_then_deletes_unshared_layers(tmp_path: Path) -> None:
    shared = f"sha256:{'e' * 64}"
    a = image(1, ["a:1", "a:2"], [shared, f"sha256:{'1' * 64}"])
    b = image(2, ["b:1"], [shared])
    store = store_with(tmp_path, a, b)
    with store.locked():
        assert store.remove(store.get("a:1"), "a:1") == ["Untagged: a:1"]
        done = store.remove(store.get("a:2"), "a:2")
    assert done == ["Untagged: a:2", f"Deleted: sha256:{'1' * 64}", f"Deleted: {a.id}"]
    assert store.has_layer(shared) and not store.has_layer(f"sha256:{'1' * 64}")
    assert [i.id for i in store.images()] == [b.id]


def test_lowerdirs_are_top_first_and_a_missing_layer_is_named(tmp_path: Path) -> None:
    img = image(1, ["a:1"], [f"sha256:{'1' * 64}", f"sha256:{'2' * 64}"])
    store = store_with(tmp_path, img)
    assert store.lowerdirs(img) == [store.layer_path(img.layers[1]), store.layer_path(img.layers[0])]
    os.rmdir(store.layer_path(img.layers[0]))
    with pytest.raises(ImageNotFound, match=f"layer sha256:{'1' * 64} is missing"):
        store.lowerdirs(img)


def test_unreadable_image_files_are_skipped(tmp_path: Path) -> None:
    store = store_with(tmp_path, image(1, ["a:1"]))
    Path(store.images_dir, "broken.json").write_text("{")
    Path(store.images_dir, "notes.txt").write_text("x")
    assert [i.repo_tags for i in store.images()] == [["a:1"]]


def test_image_round_trips_through_its_dict() -> None:
    img = image(4, ["x:1"])
    img.size, img.loaded_at = 10, 2.5
    again = Image.from_dict(json.loads(json.dumps(img.to_dict())))
    assert again == img and again.runtime_config == {"Cmd": ["sh"]} and again.created == ""
