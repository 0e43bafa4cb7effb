"""Extract one layer tarball into a directory, confined to it, while verifying its digests.

The only code that writes image files. A layer arrives as a (gzip or plain) tar stream. It is read
once: hashed compressed (against the blob digest an OCI manifest names) and uncompressed (against the
config's ``rootfs.diff_ids``), optionally copied to a sink (the uncompressed tar a manager serves to
workers), and extracted entry by entry into ``dest``, a scratch directory inside the image store.
The caller renames it into the store only after the digests matched (load.py), so an unverified
layer is never visible.

The tarball is untrusted (issue 11, High 1). Every entry is written through confined.py: paths
resolve beneath the layer directory (a symlink out of it is refused, never followed), an existing
name is replaced rather than followed, and a hard link's target must resolve inside the layer.
OCI whiteouts become overlayfs ones (``.wh.NAME`` -> a 0/0 character device ``NAME``,
``.wh..wh..opq`` -> ``trusted.overlay.opaque=y`` on the directory); ``.wh.``, ``.wh..``,
``.wh...``, other ``.wh..wh.*`` names and whiteout names used as directories are refused. Device
nodes other than the 0/0 whiteout are dropped: a container must not get a disk through its image
(its root is also mounted nodev). ``LayerLimits`` caps uncompressed bytes and entries.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import posixpath
import shutil
import stat
import tarfile
from dataclasses import dataclass
from typing import IO

from shoal.runtime.errors import ImageLoadError
from shoal.runtime.image import confined
from shoal.runtime.image.confined import Escape, LayerRoot

GZIP_MAGIC = b"\x1f\x8b"
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_BYTES = 64 << 30
"""Default cap on the uncompressed bytes one load (or one pulled layer) may unpack."""
MAX_ENTRIES = 2_000_000
"""Default cap on the tar entries one load (or one pulled layer) may hold."""


@dataclass
class LayerLimits:
    """Caps on what one load unpacks; shared by its layers, it counts what they used so far."""

    max_bytes: int = MAX_BYTES
    max_entries: int = MAX_ENTRIES
    used_bytes: int = 0
    used_entries: int = 0

    def add_bytes(self, n: int) -> None:
        self.used_bytes += n
        if self.used_bytes > self.max_bytes:
            raise ImageLoadError(f"image larger than {self.max_bytes} bytes uncompressed: refused")

    def add_entry(self) -> None:
        self.used_entries += 1
        if self.used_entries > self.max_entries:
            raise ImageLoadError(f"image holds more than {self.max_entries} entries: refused")


class _Hashing:
    """A read-only file wrapper that hashes (and optionally copies and counts) what passes through it."""

    def __init__(self, f: IO[bytes], sink: IO[bytes] | None = None, limits: LayerLimits | None = None) -> None:
        self.f = f
        self.sha = hashlib.sha256()
        self.sink = sink
        self.limits = limits

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.sha.update(data)
        if self.limits is not None:
            self.limits.add_bytes(len(data))
        if self.sink is not None:
            self.sink.write(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def extract_layer(
    raw: IO[bytes],
    name: str,
    dest: str,
    diff_id: str,
    blob: str,
    sink_path: str | None,
    limits: LayerLimits | None = None,
) -> int:
    """Extract one layer blob into ``dest`` (made here) while verifying its digests; its size in bytes.

    ``sink_path`` receives a copy of the uncompressed tar (a cluster manager serves it to workers).
    ``limits`` (default: a fresh ``LayerLimits()``) is charged with the uncompressed bytes and entries.
    """
    limits = limits if limits is not None else LayerLimits()
    compressed = _Hashing(raw)
    head = raw.read(2)
    compressed.sha.update(head)
    stream: IO[bytes] = _Prefixed(head, compressed)  # type: ignore[assignment]  # _Prefixed implements the read side of IO[bytes] that gzip and tarfile use
    if head == GZIP_MAGIC:
        stream = gzip.GzipFile(fileobj=stream, mode="rb")
    sink = open(sink_path, "wb") if sink_path else None  # noqa: SIM115 - closed below
    try:
        plain = _Hashing(stream, sink, limits)
        os.mkdir(dest, 0o755)
        size = 0
        with LayerRoot(dest) as root, tarfile.open(fileobj=plain, mode="r|") as layer:  # type: ignore[call-overload]  # _Hashing is a readable stream; the stub wants a full _Fileobj
            for entry in layer:
                limits.add_entry()
                size += _apply(layer, entry, root, name)
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


def _entry_name(layer_name: str, raw: str) -> tuple[str, str]:
    """(parent, base) of an entry; ImageLoadError for names outside the layer or misusing whiteouts."""
    name = posixpath.normpath(raw).lstrip("/")
    if name == ".." or name.startswith("../"):
        raise ImageLoadError(f"layer {layer_name}: entry {raw!r} escapes the layer")
    parent, base = posixpath.split(name)
    if any(part.startswith(WHITEOUT) for part in parent.split("/")):
        raise ImageLoadError(f"layer {layer_name}: entry {raw!r} uses a whiteout name as a directory")
    if base.startswith(WHITEOUT + WHITEOUT) and base != OPAQUE:
        raise ImageLoadError(f"layer {layer_name}: unknown whiteout metadata {raw!r}")
    if base.startswith(WHITEOUT) and base != OPAQUE and base[len(WHITEOUT) :] in ("", ".", ".."):
        raise ImageLoadError(f"layer {layer_name}: invalid whiteout {raw!r}")
    return parent, base


def _apply(layer: tarfile.TarFile, entry: tarfile.TarInfo, root: LayerRoot, layer_name: str) -> int:
    """Write one entry confined to the layer (see confined.py); its size if it is a regular file."""
    parent, base = _entry_name(layer_name, entry.name)
    if base in ("", "."):
        return 0
    if (entry.ischr() or entry.isblk()) and not (entry.ischr() and entry.devmajor == entry.devminor == 0):
        return 0  # device nodes are not kept (only the 0/0 whiteout device is): see the module doc
    try:
        pfd = root.dir(parent)
    except Escape:
        raise ImageLoadError(f"layer {layer_name}: entry {entry.name} goes through a symlink out of the layer") from None
    try:
        return _write(layer, entry, root, pfd, base, layer_name)
    finally:
        os.close(pfd)


def _write(layer: tarfile.TarFile, entry: tarfile.TarInfo, root: LayerRoot, pfd: int, base: str, lname: str) -> int:
    if base == OPAQUE:
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=pfd)
        try:
            os.setxattr(fd, "trusted.overlay.opaque", b"y")
        finally:
            os.close(fd)
        return 0
    if base.startswith(WHITEOUT):
        target = base[len(WHITEOUT) :]
        confined.remove_at(pfd, target)
        os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=pfd)
        return 0
    kept_dir = confined.remove_at(pfd, base, keep_dir=entry.isdir())
    size = 0
    if entry.isdir():
        if not kept_dir:
            os.mkdir(base, 0o700, dir_fd=pfd)
    elif entry.isreg():
        size = _write_file(layer, entry, pfd, base)
    elif entry.issym():
        os.symlink(entry.linkname, base, dir_fd=pfd)
    elif entry.islnk():
        _hard_link(entry, root, pfd, base, lname)
        return 0  # the inode is the target's: its own entry set its attributes
    elif entry.isfifo():
        os.mkfifo(base, 0o600, dir_fd=pfd)
    elif entry.ischr():
        os.mknod(base, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=pfd)
    else:
        return 0
    confined.set_attrs(pfd, base, entry.mode & 0o7777, entry.uid, entry.gid, entry.mtime, entry.issym())
    return size


def _write_file(layer: tarfile.TarFile, entry: tarfile.TarInfo, pfd: int, base: str) -> int:
    fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=pfd)
    with os.fdopen(fd, "wb") as out:
        src = layer.extractfile(entry)
        if src is not None:
            shutil.copyfileobj(src, out, 1 << 20)
    return entry.size


def _hard_link(entry: tarfile.TarInfo, root: LayerRoot, pfd: int, base: str, lname: str) -> None:
    link = posixpath.normpath(entry.linkname).lstrip("/")
    out = f"layer {lname}: hard link {entry.name} -> {entry.linkname} points out of the layer"
    if link in ("", ".", "..") or link.startswith("../"):
        raise ImageLoadError(out)
    tparent, tbase = posixpath.split(link)
    try:
        tfd = root.dir(tparent, create=False)
    except (Escape, FileNotFoundError, NotADirectoryError):
        raise ImageLoadError(out) from None
    try:
        st = confined.lstat_at(tfd, tbase)
        if st is None or stat.S_ISDIR(st.st_mode):
            raise ImageLoadError(f"layer {lname}: hard link {entry.name}: target {entry.linkname} is not a file of the layer")
        os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
    finally:
        os.close(tfd)
