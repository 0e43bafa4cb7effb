"""Two mount options applied on the node: a volume's subpath and a bind mount's propagation.

**Subpath** (docker's ``volume-subpath``, compose's ``volume: {subpath: x}``): the container gets a
directory inside the volume instead of its root. The volume's content is written by containers, so
the subpath is resolved from an fd of the volume's directory with ``openat2(RESOLVE_BENEATH ...)``
(shoal.runtime.image.confined): a symlink a container left in the volume that leads out of it
(absolute, or ``..`` past the volume) is refused, never followed. Missing directories are made inside
the volume (as Kubernetes does for subPath; a fresh volume would otherwise always fail). The bind
mount is then made from the fd itself (``/proc/self/fd/N``), so nothing can swap a path component for
a symlink between the check and the mount.

**Propagation** (``bind-propagation``): docker's default is rprivate. For shared or slave, the
source must sit on a shared (or, for slave, a shared or slave) mount of the node, checked at create
time with docker's message. PID 1 then makes its mount namespace rslave instead of rprivate, so the
bind mount stays a slave of the node's mount: mounts the node makes below the source appear in the
container (``master:N`` in its mountinfo). ``shared`` adds a peer group of its own (``shared:N``);
because the container's namespace is rslave-rooted, nothing a container mounts ever propagates back
onto the node (docker's rshared would propagate back; shoal does not let a container add mounts to
its node). Every other bind or volume mount is made private when the root is rslave.
"""

from __future__ import annotations

import errno
import os

from shoal.runtime import linux
from shoal.runtime.errors import ConfigError
from shoal.runtime.image import confined

MS_SHARED = 1 << 20
FLAGS = {
    "private": linux.MS_PRIVATE, "rprivate": linux.MS_PRIVATE | linux.MS_REC,
    "slave": linux.MS_SLAVE, "rslave": linux.MS_SLAVE | linux.MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | linux.MS_REC,
}
NEEDS_PEER = ("shared", "rshared", "slave", "rslave")


def open_subpath(volume_dir: str, subpath: str) -> int:
    """An O_PATH fd of directory ``subpath`` inside ``volume_dir`` (made if missing); ConfigError if it
    leads out of the volume or is not a directory."""
    try:
        with confined.LayerRoot(volume_dir) as root:
            return root.dir(subpath, create=True)
    except confined.Escape:
        raise ConfigError(f"volume subpath {subpath!r} leads out of the volume (through a symlink)") from None
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.ELOOP):
            raise ConfigError(f"volume subpath {subpath!r} is not a directory inside the volume") from None
        raise


def root_flags(mounts: list[dict]) -> int:
    """How PID 1 sets its whole mount namespace: rslave when a bind mount asks for shared or slave
    propagation (it must keep receiving the node's mounts), rprivate otherwise."""
    if any(m.get("bind_propagation") in NEEDS_PEER for m in mounts):
        return linux.MS_SLAVE | linux.MS_REC
    return linux.MS_PRIVATE | linux.MS_REC


def set_propagation(target: str, mode: str) -> None:
    """Give the mount at ``target`` propagation ``mode`` (one of FLAGS; "" is rprivate). A bind of a
    slave is a slave of the same master, so shared makes it shared *and* slave."""
    linux.mount(None, target, None, FLAGS[mode or "rprivate"])


def mount_info(path: str, mountinfo: str = "/proc/self/mountinfo") -> tuple[str, list[str]]:
    """The mount point holding ``path`` (resolved) and its optional fields (``shared:N``, ``master:N``)."""
    real = os.path.realpath(path)
    best, fields = "", []
    with open(mountinfo, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            point = parts[4].replace("\\040", " ")
            inside = real == point or real.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, fields = point, parts[6:parts.index("-")]
    return best, fields


def check_source(source: str, mode: str) -> None:
    """docker's check at create: shared needs the source on a shared mount, slave on a shared or slave one."""
    if mode not in NEEDS_PEER:
        return
    point, fields = mount_info(source)
    shared = any(f.startswith("shared:") for f in fields)
    slave = any(f.startswith("master:") for f in fields)
    if mode in ("shared", "rshared") and not shared:
        raise ConfigError(f"path {source} is mounted on {point} but it is not a shared mount (bind-propagation={mode})")
    if not (shared or slave):
        raise ConfigError(f"path {source} is mounted on {point} but it is not a shared or slave mount (bind-propagation={mode})")
