"""``image load``: read a docker-save or OCI image-layout tarball (gzip or not) into the image store.

Every blob is checked against its digest: the image config against its id, OCI blobs against their
descriptors, each layer's uncompressed stream against the config's ``rootfs.diff_ids``. Layers are
extracted in one streaming pass into ``image_root/tmp`` while they are hashed, converting the OCI
whiteouts to overlayfs ones (``.wh.NAME`` -> a 0/0 character device ``NAME``, ``.wh..wh..opq`` ->
``trusted.overlay.opaque=y`` on the directory) and refusing paths that escape the layer. Only a
fully verified image is moved into the store (rename, under the store lock); any failure removes
everything this load extracted and leaves the store as it was.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import posixpath
import shutil
import stat
import tarfile
import time
import uuid
from typing import IO, Any

from shoal.runtime import imagecfg
from shoal.runtime.errors import ContainerError, ImageLoadError
from shoal.runtime.imagestore import Image, ImageStore, hex_of, remove_tree

GZIP_MAGIC = b"\x1f\x8b"
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


class _Hashing:
    """A read-only file wrapper that hashes (and optionally copies) what passes through it."""

    def __init__(self, f: IO[bytes], sink: IO[bytes] | None = None) -> None:
        self.f = f
        self.sha = hashlib.sha256()
        self.sink = sink

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.sha.update(data)
        if self.sink is not None:
            self.sink.write(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def load(store: ImageStore, path: str) -> list[str]:
    """Load every image in the tarball at ``path``; returns docker's "Loaded image: ..." lines."""
    return load_images(store, path)[0]


def load_images(store: ImageStore, path: str, blobs: str | None = None) -> tuple[list[str], list[Image]]:
    """``load``, also returning the images; ``blobs``: keep each new layer's tar as ``blobs/<hex>``."""
    store.ensure()
    work = os.path.join(store.tmp_dir, f"load-{uuid.uuid4().hex[:12]}")
    os.mkdir(work, 0o700)
    try:
        return _load(store, path, work, blobs)
    except (tarfile.TarError, EOFError, OSError, ValueError, KeyError, TypeError, zlib_error) as exc:
        if isinstance(exc, ContainerError):
            raise
        raise ImageLoadError(f"invalid image archive {path}: {_why(exc)}") from None
    finally:
        remove_tree(work)


try:  # gzip raises zlib.error on corrupt deflate data
    from zlib import error as zlib_error
except ImportError:  # pragma: no cover
    zlib_error = ValueError  # type: ignore[misc,assignment]


def _why(exc: BaseException) -> str:
    if isinstance(exc, EOFError | tarfile.ReadError) or "unexpected end" in str(exc):
        return f"truncated or corrupt ({exc})" if str(exc) else "truncated or corrupt"
    if isinstance(exc, KeyError):
        return f"missing entry {exc}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"{type(exc).__name__}: {exc}"


def _open_outer(path: str, work: str) -> tarfile.TarFile:
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == GZIP_MAGIC:  # random access into a gzip stream is slow: decompress it once
        plain = os.path.join(work, "archive.tar")
        with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    else:
        plain = path
    try:
        return tarfile.open(plain, "r:")
    except tarfile.ReadError as exc:
        raise ImageLoadError(f"invalid image archive {path}: not a tar archive ({exc})") from None


def _load(store: ImageStore, path: str, work: str, blobs: str | None) -> tuple[list[str], list[Image]]:
    with _open_outer(path, work) as outer:
        members = {posixpath.normpath(m.name).lstrip("/"): m for m in outer.getmembers() if m.isfile()}

        def read(name: str) -> bytes:
            member = members.get(posixpath.normpath(name).lstrip("/"))
            if member is None:
                raise ImageLoadError(f"invalid image archive {path}: missing entry {name}")
            f = outer.extractfile(member)
            assert f is not None
            return f.read()

        if "manifest.json" in members:
            entries = _docker_entries(json.loads(read("manifest.json")))
        elif "index.json" in members:
            entries = _oci_entries(json.loads(read("index.json")), read)
        else:
            raise ImageLoadError(f"invalid image archive {path}: neither manifest.json nor index.json found")
        if not entries:
            raise ImageLoadError(f"invalid image archive {path}: it holds no image")
        results, staged = [], {}
        for config_name, config_digest, tags, layer_refs in entries:
            raw = read(config_name)
            image_id = "sha256:" + hashlib.sha256(raw).hexdigest()
            if config_digest and config_digest != image_id:
                raise ImageLoadError(f"image config {config_name}: digest mismatch (got {image_id})")
            config = json.loads(raw)
            diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
            if len(diff_ids) != len(layer_refs):
                raise ImageLoadError(
                    f"image {image_id[:19]}: {len(layer_refs)} layers but {len(diff_ids)} diff_ids"
                )
            size = 0
            for (layer_name, blob_digest), diff_id in zip(layer_refs, diff_ids, strict=True):
                if (store.has_layer(diff_id) or diff_id in staged) and _has_blob(blobs, diff_id):
                    size += staged.get(diff_id, (None, _dir_size(store.layer_path(diff_id))))[1]
                    continue
                member = members.get(posixpath.normpath(layer_name).lstrip("/"))
                if member is None:
                    raise ImageLoadError(f"invalid image archive {path}: missing layer {layer_name}")
                dest = os.path.join(work, hex_of(diff_id))
                raw = outer.extractfile(member)
                assert raw is not None
                sink = os.path.join(work, hex_of(diff_id) + ".tar") if blobs else None
                layer_size = _extract_layer(raw, member.name, dest, diff_id, blob_digest, sink)
                staged[diff_id] = (dest, layer_size)
                size += layer_size
            tags = [imagecfg.normalize_tag(t) for t in tags]
            results.append(Image(image_id, tags, diff_ids, config, size, time.time()))
    lines = []
    with store.locked():
        for diff_id, (dest, _) in staged.items():
            if not store.has_layer(diff_id):
                os.rename(dest, store.layer_path(diff_id))
            if blobs and not _has_blob(blobs, diff_id):
                os.makedirs(blobs, 0o700, exist_ok=True)
                os.rename(os.path.join(work, hex_of(diff_id) + ".tar"), os.path.join(blobs, hex_of(diff_id)))
        for image in results:
            lines += [f"Loaded image: {t}" for t in image.repo_tags] or [f"Loaded image ID: {image.id}"]
            store.commit(image)
    return lines, results


def _has_blob(blobs: str | None, diff_id: str) -> bool:
    return blobs is None or os.path.exists(os.path.join(blobs, hex_of(diff_id)))


def add_layer(store: ImageStore, diff_id: str, tar_path: str) -> None:
    """Put an uncompressed layer tar into the store after checking it against ``diff_id``."""
    if store.has_layer(diff_id):
        return
    store.ensure()
    work = os.path.join(store.tmp_dir, f"pull-{uuid.uuid4().hex[:12]}")
    os.mkdir(work, 0o700)
    try:
        dest = os.path.join(work, "layer")
        with open(tar_path, "rb") as f:
            _extract_layer(f, diff_id, dest, diff_id, "", None)
        with store.locked():
            if not store.has_layer(diff_id):
                os.rename(dest, store.layer_path(diff_id))
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib_error) as exc:
        if isinstance(exc, ContainerError):
            raise
        raise ImageLoadError(f"layer {diff_id}: {_why(exc)}") from None
    finally:
        remove_tree(work)


def _docker_entries(manifest: Any) -> list[tuple[str, str, list[str], list[tuple[str, str]]]]:
    if not isinstance(manifest, list):
        raise ImageLoadError("manifest.json must be a list")
    entries = []
    for item in manifest:
        config = item["Config"]
        digest = "sha256:" + os.path.basename(config).removesuffix(".json")
        digest = digest if len(hex_of(digest)) == 64 else ""
        entries.append(
            (config, digest, list(item.get("RepoTags") or []), [(name, "") for name in item["Layers"]])
        )
    return entries


def _oci_entries(index: Any, read: Any) -> list[tuple[str, str, list[str], list[tuple[str, str]]]]:
    entries = []

    def blob(digest: str) -> bytes:
        data = read(f"blobs/sha256/{hex_of(digest)}")
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise ImageLoadError(f"blob {digest}: digest mismatch")
        return data

    def walk(descs: list[dict], depth: int) -> None:
        for desc in descs:
            media = desc.get("mediaType", "")
            if media in INDEX_TYPES and depth < 2:
                walk(json.loads(blob(desc["digest"])).get("manifests") or [], depth + 1)
                continue
            platform = desc.get("platform") or {}
            if platform and platform.get("architecture") not in (None, _arch()):
                continue
            manifest = json.loads(blob(desc["digest"]))
            annotations = desc.get("annotations") or {}
            name = annotations.get("io.containerd.image.name") or annotations.get(
                "org.opencontainers.image.ref.name"
            )
            tags = [name] if name and (":" in name or "/" in name) else []
            cfg = manifest["config"]["digest"]
            layers = [(f"blobs/sha256/{hex_of(d['digest'])}", d["digest"]) for d in manifest["layers"]]
            entries.append((f"blobs/sha256/{hex_of(cfg)}", cfg, tags, layers))

    walk(index.get("manifests") or [], 0)
    return entries


def _arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


def _extract_layer(
    raw: IO[bytes], name: str, dest: str, diff_id: str, blob: str, sink_path: str | None
) -> int:
    """Extract one layer blob into ``dest`` while verifying its digests; returns its size in bytes.

    ``sink_path`` receives a copy of the uncompressed tar (a cluster manager serves it to workers).
    """
    compressed = _Hashing(raw)
    head = raw.read(2)
    compressed.sha.update(head)
    stream: IO[bytes] = _Prefixed(head, compressed)  # type: ignore[assignment]
    if head == GZIP_MAGIC:
        stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[arg-type]
    sink = open(sink_path, "wb") if sink_path else None  # noqa: SIM115 - closed below
    try:
        plain = _Hashing(stream, sink)
        os.mkdir(dest, 0o755)
        size = 0
        with tarfile.open(fileobj=plain, mode="r|") as layer:  # type: ignore[call-overload]
            for entry in layer:
                size += _apply(layer, entry, dest)
        plain.drain()
        compressed.drain()
    finally:
        if sink is not None:
            sink.close()
    got = "sha256:" + plain.sha.hexdigest()
    if got != diff_id:
        raise ImageLoadError(f"layer {name}: digest mismatch: expected {diff_id}, got {got}")
    if blob and "sha256:" + compressed.sha.hexdigest() != blob:
        raise ImageLoadError(f"layer {name}: blob digest mismatch: expected {blob}")
    return size


class _Prefixed:
    def __init__(self, head: bytes, rest: _Hashing) -> None:
        self.head, self.rest = head, rest

    def read(self, n: int = -1) -> bytes:
        if self.head:
            data, self.head = self.head, b""
            return data + (self.rest.read(n - len(data)) if n < 0 or n > len(data) else b"")
        return self.rest.read(n)


def _apply(layer: tarfile.TarFile, entry: tarfile.TarInfo, dest: str) -> int:
    name = posixpath.normpath(entry.name).lstrip("/")
    if name in ("", "."):
        return 0
    if name == ".." or name.startswith("../"):
        raise ImageLoadError(f"layer entry {entry.name!r} escapes the layer")
    parent, base = posixpath.split(name)
    parent_path = os.path.realpath(os.path.join(dest, parent))
    if parent_path != dest and not parent_path.startswith(dest + "/"):
        raise ImageLoadError(f"layer entry {entry.name!r} goes through a symlink out of the layer")
    if base == OPAQUE:
        os.makedirs(parent_path, exist_ok=True)
        os.setxattr(parent_path, "trusted.overlay.opaque", b"y")
        return 0
    if base.startswith(WHITEOUT):
        os.makedirs(parent_path, exist_ok=True)
        target = os.path.join(parent_path, base[len(WHITEOUT) :])
        if os.path.lexists(target):
            remove_tree(target) if os.path.isdir(target) and not os.path.islink(target) else os.unlink(target)
        os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(0, 0))
        return 0
    if entry.islnk():
        link = posixpath.normpath(entry.linkname).lstrip("/")
        if link == ".." or link.startswith("../"):
            raise ImageLoadError(f"layer hard link {entry.name!r} points out of the layer")
        entry.linkname = link
    entry.name = name
    layer.extract(entry, dest, set_attrs=True, numeric_owner=True, filter="fully_trusted")
    return entry.size if entry.isfile() else 0


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
