"""A container's own mounts (bind, volume, tmpfs), made inside its mount namespace before pivot_root.

A named volume that is still empty gets a copy of what the image has at its target first, as in
docker (``copy_into_empty``; not with ``volume_nocopy``). Targets are resolved *inside* the new root (``secure_join``): an image's symlink such as
``/data -> /etc`` then leads to the container's /etc, never to the host's. Missing mount points are
created in an image's writable overlay; the read-only host image must already have them.
"""

from __future__ import annotations

import errno
import os
import stat

from shoal.runtime import linux
from shoal.runtime.launcher.child import mountopts
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


def apply(root: str, mounts: list[dict], read_only_root: bool, copy_up: bool = False) -> None:
    """Mount each of ``mounts`` inside ``root``; ``copy_up``: a volume that is still empty first gets
    what the image has at its target (docker's rule; not with ``volume_nocopy``)."""
    private_root = mountopts.root_flags(mounts) & linux.MS_PRIVATE
    for m in mounts:
        target = secure_join(root, m["target"])
        if m["type"] == "tmpfs":
            _make_point(target, True, read_only_root, m["target"])
            data = f"mode={m.get('tmpfs_mode') or 0o1777:o}" + (f",size={m['tmpfs_size']}" if m.get("tmpfs_size") else "")
            flags = MS_NOSUID | MS_NODEV | (MS_RDONLY if m.get("readonly") else 0)
            linux.mount("tmpfs", target, "tmpfs", flags, data)
            continue
        fd = mountopts.open_subpath(m["source"], m["volume_subpath"]) if m.get("volume_subpath") else -1
        try:
            _bind(m, target, f"/proc/self/fd/{fd}" if fd >= 0 else m["source"], read_only_root, copy_up)
        finally:
            if fd >= 0:
                os.close(fd)
        if m.get("bind_propagation") or not private_root:
            mountopts.set_propagation(target, m.get("bind_propagation") or "")


def _bind(m: dict, target: str, source: str, read_only_root: bool, copy_up: bool) -> None:
    """Bind ``source`` (the host path, or the fd of a volume's subpath) at ``target``."""
    if copy_up and m["type"] == "volume" and not m.get("volume_nocopy") and os.path.isdir(target):
        copy_into_empty(target, source)
    _make_point(target, os.path.isdir(source), read_only_root, m["target"])
    linux.mount(source, target, None, MS_BIND | MS_REC)
    if m.get("readonly"):
        try:
            linux.mount_setattr(target, linux.MOUNT_ATTR_RDONLY, recursive=True)
        except OSError as exc:
            if exc.errno not in (errno.ENOSYS, errno.EINVAL):
                raise
            linux.mount(None, target, None, linux.MS_REMOUNT | MS_BIND | MS_RDONLY)


def copy_into_empty(src: str, dst: str) -> bool:
    """Copy the tree at ``src`` (the image's directory) into ``dst`` (a volume) if ``dst`` is empty.

    Symlinks are copied as links, never followed; devices, fifos and sockets are skipped; modes and
    owners are kept, and ``dst`` itself takes ``src``'s. Returns whether anything was copied.
    """
    if os.listdir(dst) or not os.listdir(src):
        return False
    st = os.stat(src)
    _copy_tree(src, dst)
    os.chown(dst, st.st_uid, st.st_gid)
    os.chmod(dst, stat.S_IMODE(st.st_mode))
    return True


def _copy_tree(src: str, dst: str) -> None:
    for entry in os.scandir(src):
        st = entry.stat(follow_symlinks=False)
        to = os.path.join(dst, entry.name)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(entry.path), to)
        elif stat.S_ISDIR(st.st_mode):
            os.mkdir(to, 0o700)
            _copy_tree(entry.path, to)
        elif stat.S_ISREG(st.st_mode):
            fd_in = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                fd_out = os.open(to, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                try:
                    while os.sendfile(fd_out, fd_in, None, 1 << 20):
                        pass
                finally:
                    os.close(fd_out)
            finally:
                os.close(fd_in)
        else:
            continue
        os.lchown(to, st.st_uid, st.st_gid)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(to, stat.S_IMODE(st.st_mode))
