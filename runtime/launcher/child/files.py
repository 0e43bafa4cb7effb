"""The start-time files of a container (secrets, configs), placed by its PID 1 before pivot_root.

PID 1 runs in its own mount namespace (private propagation), so the tmpfs it mounts on the staging
directory exists there only: the host's mount table never shows it, and it holds the only copy of the
data outside memory. Each file is written into it (owner and mode as asked, ``O_EXCL|O_NOFOLLOW``),
then bind-mounted read-only at its target, resolved inside the new root (an image's symlink cannot
lead a target to the host). The staging mount is then detached: the bind mounts keep the tmpfs alive
until the container's last process exits, and nothing else can reach it.
"""

from __future__ import annotations

import errno
import os

from shoal.runtime import linux
from shoal.runtime.files import ContainerFile
from shoal.runtime.launcher.child.usermounts import secure_join
from shoal.runtime.linux import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY

PAGE = 4096


def _mount_point(path: str, shown: str) -> None:
    """An empty file to mount on (its parents 0755); an existing directory is refused."""
    if os.path.isdir(path) and not os.path.islink(path):
        raise OSError(errno.EISDIR, f"cannot place a file at {shown}: a directory is there", shown)
    if os.path.lexists(path):
        return
    try:
        os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o444))
    except OSError as exc:
        if exc.errno == errno.EROFS:
            raise OSError(errno.EROFS, f"cannot place a file at {shown}: the root filesystem is read-only there", shown) from None
        raise


def _write(path: str, f: ContainerFile) -> None:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(f.data)
        while view:
            view = view[os.write(fd, view) :]
        os.fchown(fd, f.uid, f.gid)
        os.fchmod(fd, f.mode)
    finally:
        os.close(fd)


def place(root: str, files: list[ContainerFile], staging: str) -> None:
    """Put ``files`` at their targets under ``root`` (before pivot_root); ``staging``: an empty directory."""
    if not files:
        return
    size = sum(len(f.data) + PAGE for f in files) + 16 * PAGE
    linux.mount("tmpfs", staging, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"mode=0700,size={size}")
    try:
        for i, f in enumerate(files):
            src = os.path.join(staging, str(i))
            _write(src, f)
            target = secure_join(root, f.target)
            _mount_point(target, f.target)
            linux.mount(src, target, None, MS_BIND)
            linux.mount(None, target, None, linux.MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    finally:
        linux.umount2(staging, linux.MNT_DETACH)
