"""Write inside one layer directory without ever leaving it, whatever symlinks the layer made.

A layer tarball is untrusted: it may create a symlink and then an entry of the same name, or one
below it, or a hard link whose target goes through it (issue 11, High 1). Every path here is resolved
from an fd of the layer's root with ``openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
RESOLVE_NO_XDEV)``: a symlink that leads out of the layer (absolute, or ``..`` past the root) makes
the kernel refuse with EXDEV instead of following it. The final name of an entry is never
resolved: the entry is made with the ``*at`` calls in its (resolved) parent directory, after an
existing entry of that name is removed, so a symlink there is replaced, not followed.

Kernels before 5.6 lack openat2: the walk then opens one component at a time with
``O_NOFOLLOW``, which refuses every symlink in a parent path (stricter, still correct).

Extraction runs in a private scratch dir (the store's 0700 ``tmp/``) in one thread, so nothing
else changes the tree between a resolution and the call that uses it.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat

from shoal.runtime import linux
from shoal.runtime.errors import ImageLoadError

RESOLVE = linux.RESOLVE_BENEATH | linux.RESOLVE_NO_MAGICLINKS | linux.RESOLVE_NO_XDEV
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY


class Escape(ImageLoadError):
    """A path of the layer resolves (through a symlink) outside the layer directory."""


class LayerRoot:
    """An open layer directory; every method takes paths relative to it (no leading ``/``)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, _DIR_FLAGS | os.O_CLOEXEC)
        self._openat2 = True

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> LayerRoot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_dir(self, rel: str) -> int:
        """An O_PATH fd of directory ``rel``, resolved beneath the root; Escape if it leaves it."""
        if not rel:
            return os.dup(self.fd)
        if self._openat2:
            try:
                return linux.openat2(self.fd, rel, _DIR_FLAGS, RESOLVE)
            except OSError as exc:
                if exc.errno == errno.EXDEV:
                    raise Escape(f"{rel} leads out of the layer") from None
                if exc.errno != errno.ENOSYS:
                    raise
                self._openat2 = False
        return self._walk(rel)

    def _walk(self, rel: str) -> int:
        """The fallback: one component at a time, refusing every symlink."""
        fd = os.dup(self.fd)
        try:
            for part in rel.split("/"):
                try:
                    nxt = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                except NotADirectoryError:
                    if stat.S_ISLNK(os.lstat(part, dir_fd=fd).st_mode):
                        raise Escape(f"{rel} goes through a symlink") from None
                    raise
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        return fd

    def dir(self, rel: str, create: bool = True) -> int:
        """An O_PATH fd of directory ``rel``; missing components are made (0755) when ``create``."""
        try:
            return self._open_dir(rel)
        except FileNotFoundError:
            if not create:
                raise
        parts = rel.split("/")
        fd = os.dup(self.fd)
        try:
            for i, part in enumerate(parts):
                prefix = "/".join(parts[: i + 1])
                try:
                    nxt = self._open_dir(prefix)
                except FileNotFoundError:
                    os.mkdir(part, 0o755, dir_fd=fd)  # EEXIST for a dangling symlink: refused
                    nxt = self._open_dir(prefix)
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        return fd


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    """``name`` in ``dir_fd``, not followed; None when absent."""
    try:
        return os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None


def remove_at(dir_fd: int, name: str, keep_dir: bool = False) -> bool:
    """Remove ``name`` from ``dir_fd`` (a whole tree for a directory, never following a symlink).

    With ``keep_dir`` an existing real directory stays (a layer may list a directory twice, or
    after its children); returns whether such a directory is there.
    """
    st = lstat_at(dir_fd, name)
    if st is None:
        return False
    if stat.S_ISDIR(st.st_mode):
        if keep_dir:
            return True
        shutil.rmtree(name, dir_fd=dir_fd)  # fd-based: symlinks inside are unlinked, not followed
    else:
        os.unlink(name, dir_fd=dir_fd)
    return False


def set_attrs(dir_fd: int, name: str, mode: int, uid: int, gid: int, mtime: float, is_link: bool) -> None:
    """Owner (root only, as tar does), then mode (after chown, which clears set-id bits), then times."""
    if os.geteuid() == 0:
        os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
    if not is_link:  # a symlink has no mode of its own on Linux
        os.chmod(name, mode, dir_fd=dir_fd, follow_symlinks=False)
    os.utime(name, (mtime, mtime), dir_fd=dir_fd, follow_symlinks=False)
