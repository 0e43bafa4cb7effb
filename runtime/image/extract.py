"""Extract one layer tarball into a directory while verifying its digests: the only code that writes image files.

A layer arrives as a (gzip or plain) tar stream. It is read once: hashed compressed (against the
blob digest an OCI manifest names) and uncompressed (against the config's ``rootfs.diff_ids``),
optionally copied to a sink (the uncompressed tar a manager serves to workers), and extracted entry
by entry into ``dest``. OCI whiteouts become overlayfs ones (``.wh.NAME`` -> a 0/0 character device
``NAME``, ``.wh..wh..opq`` -> ``trusted.overlay.opaque=y`` on the directory); an entry or hard link
that would escape the layer is refused. A digest mismatch raises ImageLoadError after extraction;
the caller extracted into a scratch directory and removes it.

Kept in one module behind ``extract_layer`` so the extraction can be confined or replaced without
touching archive parsing or the store (see load.py).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import posixpath
import stat
import tarfile
from typing import IO

from shoal.runtime.errors import ImageLoadError
from shoal.runtime.image.store import remove_tree

GZIP_MAGIC = b"\x1f\x8b"
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


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


def extract_layer(
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
