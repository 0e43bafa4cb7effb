"""Build a container's root filesystem inside its new mount namespace, then pivot_root into it.

Runs in the container's PID 1 before exec, after ``unshare(CLONE_NEWNS)``, so every mount made here
lives and dies with the container's mount namespace: nothing can leak into the host's mount table.
For the built-in ``host`` image the root is the host's ``/`` bind-mounted recursively and made
read-only and nodev with one ``mount_setattr(AT_RECURSIVE)``; the API filesystems copied along (/proc, /sys,
/dev, /run, /tmp) are detached and replaced with fresh, private ones. /run becomes a private tmpfs
so the host's sockets (e.g. /run/shoal) are invisible. The /proc masks follow Docker's defaults.

Every root is nodev (issue 11, High 4): a device node in an image layer, or one the container makes
with CAP_MKNOD, cannot be opened there. Only the bind mounts of the allowed host devices in /dev
(null, zero, full, random, urandom, tty) and devpts keep device access; the cgroup's device
allow-list (v1 devices, v2 BPF program) stands behind them as well.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from shoal.runtime import linux
from shoal.runtime.files import ContainerFile
from shoal.runtime.launcher import trace
from shoal.runtime.launcher.child import files as childfiles
from shoal.runtime.launcher.child import mountopts, usermounts
from shoal.runtime.linux import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_STRICTATIME

DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "ptmx": "pts/ptmx",
}
MASKED_PATHS = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
HOST_SUBMOUNTS_TO_DETACH = ("proc", "sys", "dev", "run", "tmp")


def _detach_if_mounted(path: str) -> None:
    """Lazily unmount ``path`` and everything below it, repeating for stacked mounts."""
    for _ in range(16):
        try:
            linux.umount2(path, linux.MNT_DETACH)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOENT):  # not a mount point (any more)
                return
            raise


def bind_host_root(root: str, root_flags: int = MS_REC | linux.MS_PRIVATE) -> None:
    """Make ``root`` a read-only recursive bind of the host's ``/`` minus its API filesystems."""
    linux.mount(None, "/", None, root_flags)
    linux.mount("/", root, None, MS_BIND | MS_REC)
    for sub in HOST_SUBMOUNTS_TO_DETACH:
        _detach_if_mounted(os.path.join(root, sub))
    try:
        linux.mount_setattr(root, linux.MOUNT_ATTR_RDONLY | linux.MOUNT_ATTR_NODEV, recursive=True)
    except OSError as exc:
        if exc.errno not in (errno.ENOSYS, errno.EINVAL):
            raise
        _remount_ro_each(root)


def _remount_ro_each(root: str) -> None:
    """Fallback for kernels before 5.12: bind-remount every mount under ``root`` read-only."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in points:
        if point == root or point.startswith(root.rstrip("/") + "/"):
            linux.mount(None, point, None, linux.MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NODEV)


def mount_api_filesystems(root: str, tmp_and_run: bool = True) -> None:
    """Fresh /proc (of the new pid ns), /dev, /sys (read-only) and (host image) /tmp and /run."""
    j = os.path.join
    if tmp_and_run:
        linux.mount("tmpfs", j(root, "tmp"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
        linux.mount("tmpfs", j(root, "run"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=64m")
    linux.mount("proc", j(root, "proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    trace.mark("proc")
    _mount_dev(j(root, "dev"))
    trace.mark("dev")
    linux.mount("sysfs", j(root, "sys"), "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    trace.mark("sys")


def _mount_dev(dev: str) -> None:
    # nodev on the tmpfs: a node made with CAP_MKNOD here cannot be opened (we have no devices
    # cgroup allow-list); the bind mounts of the safe host devices keep their own flags.
    linux.mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NODEV | MS_STRICTATIME, "mode=755,size=65536k")
    for name in DEVICES:
        target = os.path.join(dev, name)
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o666))
        linux.mount(f"/dev/{name}", target, None, MS_BIND)
    for name in ("pts", "shm", "mqueue"):
        os.mkdir(os.path.join(dev, name), 0o755)
    linux.mount(
        "devpts",
        os.path.join(dev, "pts"),
        "devpts",
        MS_NOSUID | MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620,gid=5",
    )
    linux.mount(
        "shm", os.path.join(dev, "shm"), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k"
    )
    linux.mount("mqueue", os.path.join(dev, "mqueue"), "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for name, target in DEV_LINKS.items():
        os.symlink(target, os.path.join(dev, name))


def pivot(root: str) -> None:
    """Make ``root`` the process' ``/`` and drop the old root entirely."""
    os.chdir(root)
    linux.pivot_root(".", ".")
    linux.umount2(".", linux.MNT_DETACH)
    os.chdir("/")


def mask_paths(extra: list[str] | None = None) -> None:
    """Docker's masked and read-only /proc paths, then the caller's ``extra`` ones; after pivot.

    A masked directory gets an empty read-only tmpfs, anything else (a file, a socket) /dev/null.
    Paths resolve inside the new root, so an image's symlink cannot point a mask at the host.
    """
    for path in (*MASKED_PATHS, *(extra or ())):
        try:
            if os.path.isdir(path):
                linux.mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0")
            else:
                linux.mount("/dev/null", path, None, MS_BIND)
        except FileNotFoundError:
            continue
    for path in READONLY_PATHS:
        try:
            linux.mount(path, path, None, MS_BIND | MS_REC)
        except FileNotFoundError:
            continue
        linux.mount(
            None, path, None, linux.MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
        )


def hide(root: str, paths: list[str]) -> None:
    """Cover host directories (e.g. the runtime's state dir with its socket) with an empty tmpfs."""
    for path in paths:
        target = os.path.join(root, path.lstrip("/"))
        if os.path.isdir(target):
            linux.mount("tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0")


def setup_host_image(
    root: str,
    hidden: list[str],
    mounts: list[dict] | None = None,
    masked: list[str] | None = None,
    files: list[ContainerFile] | None = None,
    staging: str = "",
) -> None:
    """The whole root filesystem sequence for the ``host`` image; ends with ``/`` = the new root.

    ``hidden`` lists host directories the container must not see (the runtime's state directory:
    its launcher socket would otherwise be reachable from inside).
    """
    bind_host_root(root, mountopts.root_flags(mounts or []))
    mount_api_filesystems(root)
    hide(root, hidden)
    usermounts.apply(root, mounts or [], read_only_root=True)
    childfiles.place(root, files or [], staging)
    pivot(root)
    mask_paths(masked)


API_DIRS = ("proc", "dev", "sys")


def api_dirs_in_layers(lowerdirs: list[str]) -> bool:
    """Whether the image's /proc, /dev and /sys are plain directories, judged from the layers
    (top first; the first layer holding a name decides; an opaque root hides the layers below).

    The launcher asks before forking, so PID 1 need not look them up through the overlay.
    """
    for name in API_DIRS:
        for layer in lowerdirs:
            try:
                mode = os.lstat(os.path.join(layer, name)).st_mode
            except FileNotFoundError:
                try:
                    if os.getxattr(layer, "trusted.overlay.opaque") == b"y":
                        return False
                except OSError:
                    pass
                continue
            if not stat.S_ISDIR(mode):  # a whiteout (char 0:0), a symlink or a file
                return False
            break
        else:
            return False
    return True


def mount_overlay(root: str, lowerdirs: list[str], upper: str, work: str) -> None:
    """Mount the image's layers (top first) with the container's writable upper dir at ``root``."""
    options = f"lowerdir={':'.join(lowerdirs)},upperdir={upper},workdir={work}"
    linux.mount("overlay", root, "overlay", MS_NODEV, options)


def make_api_dirs(root: str) -> None:
    """Make /proc, /dev and /sys directories in the overlay (an image's link or file there goes)."""
    for name in API_DIRS:
        path = os.path.join(root, name)
        if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
            os.unlink(path)  # the image's own entry would redirect our mount
        os.makedirs(path, 0o755, exist_ok=True)


def setup_image(
    root: str,
    lowerdirs: list[str],
    upper: str,
    work: str,
    mounts: list[dict],
    api_dirs: bool = False,
    masked: list[str] | None = None,
    read_only: bool = False,
    files: list[ContainerFile] | None = None,
    staging: str = "",
    workdir: str = "/",
) -> None:
    """The root filesystem of an image: overlayfs of its layers plus the container's upper dir.

    ``read_only``: the root is remounted read-only once everything is mounted on it (``--read-only``).
    ``workdir``: made (root's, 0755) when the image lacks it, as docker does, before the root turns read-only.
    ``api_dirs``: the image is known to have /proc, /dev and /sys as directories (see
    api_dirs_in_layers); otherwise they are made (and a link or file in their place removed).
    """
    linux.mount(None, "/", None, mountopts.root_flags(mounts))  # rslave only for a bind's propagation
    trace.mark("private")
    mount_overlay(root, lowerdirs, upper, work)
    trace.mark("overlay")
    if not api_dirs:
        make_api_dirs(root)
    trace.mark("mkdirs")
    mount_api_filesystems(root, tmp_and_run=False)
    usermounts.apply(root, mounts, read_only_root=False, copy_up=True)
    childfiles.place(root, files or [], staging)
    trace.mark("files")
    make_workdir(root, workdir)
    pivot(root)
    trace.mark("pivot")
    mask_paths(masked)
    trace.mark("masks")
    if read_only:
        remount_root_read_only()


def make_workdir(root: str, workdir: str) -> None:
    """Create the working directory in the container (symlinks resolved inside ``root``) if it is missing.
    One that cannot be made (under a read-only mount) is left to the chdir, which names it."""
    target = usermounts.secure_join(root, workdir)
    if not os.path.lexists(target):
        with contextlib.suppress(OSError):
            os.makedirs(target, 0o755)


def remount_root_read_only() -> None:
    """``--read-only``: the root mount itself becomes read-only (its submounts keep their own flags)."""
    linux.mount(None, "/", None, linux.MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NODEV)
