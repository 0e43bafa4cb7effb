"""A container's own mounts (bind, volume, tmpfs), made inside its mount namespace before pivot_root.

Targets are resolved *inside* the new root (``secure_join``): an image's symlink such as
``/data -> /etc`` then leads to the container's /etc, never to the host's. Missing mount points are
created in an image's writable overlay; the read-only host image must already have them.
"""

from __future__ import annotations

import errno
import os
import stat

from shoal.runtime import linux
from shoal.runtime.linux import MS_BIND, MS_NODEV, MS_NOSUID, MS_RDONLY, MS_REC

MAX_SYMLINKS = 40


def secure_join(root: str, path: str) -> str:
    """``root/path`` with every symlink on the way resolved as if ``root`` were ``/``."""
    parts = [p for p in path.split("/") if p and p != "."]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > MAX_SYMLINKS:
                raise OSError(errno.ELOOP, "too many symlinks", path)
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _make_point(target: str, is_dir: bool, read_only_root: bool, shown: str) -> None:
    if os.path.lexists(target):
        return
    if read_only_root:
        raise OSError(errno.ENOENT, f"mount point {shown} does not exist in the read-only host image", shown)
    if is_dir:
        os.makedirs(target, 0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), 0o755, exist_ok=True)
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def apply(root: str, mounts: list[dict], read_only_root: bool) -> None:
    for m in mounts:
        target = secure_join(root, m["target"])
        if m["type"] == "tmpfs":
            _make_point(target, True, read_only_root, m["target"])
            data = "mode=1777" + (f",size={m['tmpfs_size']}" if m.get("tmpfs_size") else "")
            flags = MS_NOSUID | MS_NODEV | (MS_RDONLY if m.get("readonly") else 0)
            linux.mount("tmpfs", target, "tmpfs", flags, data)
            continue
        source = m["source"]
        _make_point(target, os.path.isdir(source), read_only_root, m["target"])
        linux.mount(source, target, None, MS_BIND | MS_REC)
        if m.get("readonly"):
            try:
                linux.mount_setattr(target, linux.MOUNT_ATTR_RDONLY, recursive=True)
            except OSError as exc:
                if exc.errno not in (errno.ENOSYS, errno.EINVAL):
                    raise
                linux.mount(None, target, None, linux.MS_REMOUNT | MS_BIND | MS_RDONLY)
