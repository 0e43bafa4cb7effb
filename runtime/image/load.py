"""``image load``: read a docker-save or OCI image-layout tarball (gzip or not) into the image store.

Every blob is checked against its digest: the image config against its id, OCI blobs against their
descriptors (manifest.py), each layer's streams against the config's ``rootfs.diff_ids`` while it is
extracted into ``image_root/tmp`` (extract.py). Only a fully verified image is moved into the store
(rename, under the store lock); any failure removes everything this load extracted and leaves the
store as it was. ``add_layer`` does the same for one layer a worker pulled from a manager. Every
path into the store goes through ``extract_layer``, which confines each entry to its layer; one
``LayerLimits`` caps what a whole load unpacks (the outer gzip included).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import posixpath
import stat
import tarfile
import time
import uuid
from typing import IO

from shoal.runtime.errors import ContainerError, ImageLoadError
from shoal.runtime.image import manifest
from shoal.runtime.image.extract import GZIP_MAGIC, LayerLimits, extract_layer
from shoal.runtime.image.ref import normalize_tag
from shoal.runtime.image.store import Image, ImageStore, hex_of, remove_tree


def load(store: ImageStore, path: str) -> list[str]:
    """Load every image in the tarball at ``path``; returns docker's "Loaded image: ..." lines."""
    return load_images(store, path)[0]


def load_images(
    store: ImageStore, path: str, blobs: str | None = None, limits: LayerLimits | None = None
) -> tuple[list[str], list[Image]]:
    """``load``, also returning the images; ``blobs``: keep each new layer's tar as ``blobs/<hex>``.

    ``limits`` caps the uncompressed bytes and tar entries of the whole load (default: LayerLimits()).
    """
    store.ensure()
    work = os.path.join(store.tmp_dir, f"load-{uuid.uuid4().hex[:12]}")
    os.mkdir(work, 0o700)
    try:
        return _load(store, path, work, blobs, limits or LayerLimits())
    except (tarfile.TarError, EOFError, OSError, ValueError, KeyError, TypeError, zlib_error) as exc:
        if isinstance(exc, ContainerError):
            raise
        raise ImageLoadError(f"invalid image archive {path}: {_why(exc)}") from None
    finally:
        remove_tree(work)


try:  # gzip raises zlib.error on corrupt deflate data
    from zlib import error as zlib_error
except ImportError:  # pragma: no cover
    zlib_error = ValueError  # type: ignore[misc,assignment]  # the zlib fallback: ValueError stands in for zlib.error


def _why(exc: BaseException) -> str:
    if isinstance(exc, EOFError | tarfile.ReadError) or "unexpected end" in str(exc):
        return f"truncated or corrupt ({exc})" if str(exc) else "truncated or corrupt"
    if isinstance(exc, KeyError):
        return f"missing entry {exc}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"{type(exc).__name__}: {exc}"


def _open_outer(path: str, work: str, limits: LayerLimits) -> tarfile.TarFile:
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == GZIP_MAGIC:  # random access into a gzip stream is slow: decompress it once
        plain = os.path.join(work, "archive.tar")
        outer = LayerLimits(max_bytes=limits.max_bytes)  # the layers inside are counted again
        with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
            while data := src.read(1 << 20):
                outer.add_bytes(len(data))
                dst.write(data)
    else:
        plain = path
    try:
        return tarfile.open(plain, "r:")
    except tarfile.ReadError as exc:
        raise ImageLoadError(f"invalid image archive {path}: not a tar archive ({exc})") from None


class _Archive:
    """The outer tarball: its regular files by normalized name."""

    def __init__(self, path: str, outer: tarfile.TarFile) -> None:
        self.path, self.outer = path, outer
        self.members = {_norm(m.name): m for m in outer.getmembers() if m.isfile()}

    def member(self, name: str, what: str = "entry") -> tarfile.TarInfo:
        member = self.members.get(_norm(name))
        if member is None:
            raise ImageLoadError(f"invalid image archive {self.path}: missing {what} {name}")
        return member

    def open(self, member: tarfile.TarInfo) -> IO[bytes]:
        f = self.outer.extractfile(member)
        assert f is not None
        return f

    def read(self, name: str) -> bytes:
        return self.open(self.member(name)).read()

    def entries(self) -> list[manifest.Entry]:
        if "manifest.json" in self.members:
            entries = manifest.docker_entries(json.loads(self.read("manifest.json")))
        elif "index.json" in self.members:
            entries = manifest.oci_entries(json.loads(self.read("index.json")), self.read)
        else:
            raise ImageLoadError(
                f"invalid image archive {self.path}: neither manifest.json nor index.json found"
            )
        if not entries:
            raise ImageLoadError(f"invalid image archive {self.path}: it holds no image")
        return entries


def _norm(name: str) -> str:
    return posixpath.normpath(name).lstrip("/")


class _Staging:
    """Layers extracted (and verified) into the load's scratch dir, not yet in the store."""

    def __init__(self, store: ImageStore, work: str, blobs: str | None, limits: LayerLimits) -> None:
        self.store, self.work, self.blobs, self.limits = store, work, blobs, limits
        self.layers: dict[str, tuple[str, int]] = {}
        """diff_id -> (scratch dir, size in bytes)."""

    def image(self, archive: _Archive, entry: manifest.Entry) -> Image:
        """Verify one image's config and extract the layers the store lacks."""
        raw = archive.read(entry.config_name)
        image_id = "sha256:" + hashlib.sha256(raw).hexdigest()
        if entry.config_digest and entry.config_digest != image_id:
            raise ImageLoadError(f"image config {entry.config_name}: digest mismatch (got {image_id})")
        config = json.loads(raw)
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        if len(diff_ids) != len(entry.layers):
            raise ImageLoadError(
                f"image {image_id[:19]}: {len(entry.layers)} layers but {len(diff_ids)} diff_ids"
            )
        size = sum(
            self.layer(archive, ref, diff_id) for ref, diff_id in zip(entry.layers, diff_ids, strict=True)
        )
        tags = [normalize_tag(t) for t in entry.tags]
        return Image(image_id, tags, diff_ids, config, size, time.time())

    def layer(self, archive: _Archive, ref: tuple[str, str], diff_id: str) -> int:
        """Extract one layer unless the store (or this load) has it already; its size."""
        if (self.store.has_layer(diff_id) or diff_id in self.layers) and _has_blob(self.blobs, diff_id):
            if diff_id in self.layers:
                return self.layers[diff_id][1]
            return _dir_size(self.store.layer_path(diff_id))
        layer_name, blob_digest = ref
        member = archive.member(layer_name, "layer")
        dest = os.path.join(self.work, hex_of(diff_id))
        sink = os.path.join(self.work, hex_of(diff_id) + ".tar") if self.blobs else None
        size = extract_layer(archive.open(member), member.name, dest, diff_id, blob_digest, sink, self.limits)
        self.layers[diff_id] = (dest, size)
        return size

    def commit(self, images: list[Image]) -> list[str]:
        """Move the layers in and store the images, under the store lock; docker's output lines."""
        lines: list[str] = []
        with self.store.locked():
            for diff_id, (dest, _) in self.layers.items():
                if not self.store.has_layer(diff_id):
                    os.rename(dest, self.store.layer_path(diff_id))
                if self.blobs and not _has_blob(self.blobs, diff_id):
                    os.makedirs(self.blobs, 0o700, exist_ok=True)
                    tar = os.path.join(self.work, hex_of(diff_id) + ".tar")
                    os.rename(tar, os.path.join(self.blobs, hex_of(diff_id)))
            for image in images:
                lines += [f"Loaded image: {t}" for t in image.repo_tags] or [f"Loaded image ID: {image.id}"]
                self.store.commit(image)
        return lines


def _load(
    store: ImageStore, path: str, work: str, blobs: str | None, limits: LayerLimits
) -> tuple[list[str], list[Image]]:
    staging = _Staging(store, work, blobs, limits)
    with _open_outer(path, work, limits) as outer:
        archive = _Archive(path, outer)
        images = [staging.image(archive, entry) for entry in archive.entries()]
    return staging.commit(images), images


def _has_blob(blobs: str | None, diff_id: str) -> bool:
    return blobs is None or os.path.exists(os.path.join(blobs, hex_of(diff_id)))


def add_layer(store: ImageStore, diff_id: str, tar_path: str, limits: LayerLimits | None = None) -> None:
    """Put an uncompressed layer tar into the store after checking it against ``diff_id``.

    The layer is extracted (confined) into the store's tmp dir and renamed in only once it matched.
    """
    if store.has_layer(diff_id):
        return
    store.ensure()
    work = os.path.join(store.tmp_dir, f"pull-{uuid.uuid4().hex[:12]}")
    os.mkdir(work, 0o700)
    try:
        dest = os.path.join(work, "layer")
        with open(tar_path, "rb") as f:
            extract_layer(f, diff_id, dest, diff_id, "", None, limits)
        with store.locked():
            if not store.has_layer(diff_id):
                os.rename(dest, store.layer_path(diff_id))
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib_error) as exc:
        if isinstance(exc, ContainerError):
            raise
        raise ImageLoadError(f"layer {diff_id}: {_why(exc)}") from None
    finally:
        remove_tree(work)


def _dir_size(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                st = os.lstat(os.path.join(root, f))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total
