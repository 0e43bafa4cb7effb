"""Each lab host's own mount namespace: a host sees the files a real host of its role would hold, no more.

Lab hosts are processes of one machine. Sharing its mounts, a process on a worker host (a task, the agent)
could read the lab dir: the etcd CA key and the managers' client key (sign itself an etcd certificate, then read
the join tokens and rewrite roles), every manager's node key and KEK, the managers' control sockets.

So each host gets one mount namespace, made at ``lab up`` and kept by a bind mount of its nsfs file under
``<lab dir>/.mntns`` (as ``ip netns`` keeps network namespaces), which every process of the host joins
(daemon, etcd member, ``lab exec``): the agent's own mounts (task network namespaces) are the same for all of
them and outlive a ``lab kill``; ``lab down`` unmounts the file after killing the host, and the namespace goes
with every mount made in it. Inside it:

- the machine's mounts are slaves: an unmount on the machine reaches the host, a mount of the host stays there;
- namespace files mounted on the machine are detached, so a host never keeps another one's namespaces alive;
- the lab dir, ``/var/lib/shoal``, ``/etc/shoal`` and ``~/.shoal`` are covered by an empty tmpfs, and only the
  host's own files are bound back (``view``): its data dir, read-write, and on a manager of a 3/5-manager lab
  the etcd CA certificate, its member pair and the managers' client pair, read-only. No host holds the etcd
  CA key: a real deployment keeps it off the hosts (``shoal etcd-certs``).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from shoal import etcdtls
from shoal.lab.state import Lab, LabError, Node
from shoal.runtime import linux

HIDDEN = ("/var/lib/shoal", "/etc/shoal")
"""The machine's own shoal state and configuration: no lab host is that machine's node."""


@dataclass(frozen=True)
class Bind:
    """A path of the machine bound back at the same place inside a host's namespace."""

    path: str
    writable: bool


def outermost(paths: list[str]) -> list[str]:
    """The paths none of the others contains (normalised, in their first order): one tmpfs covers the rest."""
    norm = list(dict.fromkeys(os.path.normpath(p) for p in paths))
    return [p for p in norm if not any(q != p and _under(p, q) for q in norm)]


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def view(lab: Lab, node: Node, home: str = "~") -> tuple[list[str], list[Bind]]:
    """What ``node``'s host sees differently from the machine: (dirs covered by an empty tmpfs, paths bound back).

    Pure: paths only. A bound path outside every cover is left out (the host sees it anyway)."""
    covers = outermost([lab.dir, *HIDDEN, os.path.join(os.path.expanduser(home), ".shoal")])
    binds = [Bind(node.data_dir, True)]
    if node.role == "manager" and lab.etcd_cluster:
        member = etcdtls.files(lab.etcd_tls_dir, node.name)
        client = etcdtls.files(lab.etcd_tls_dir, "managers")
        binds += [Bind(str(p), False) for p in (member.ca, member.cert, member.key, client.cert, client.key)]
    return covers, [b for b in binds if any(_under(os.path.normpath(b.path), c) for c in covers)]


def _unescape(field: str) -> str:
    """A mountinfo path: spaces, tabs, newlines and backslashes are octal escapes there."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def mounts(mountinfo: str) -> list[tuple[str, str]]:
    """(mount point, filesystem type) of every line of a mountinfo text."""
    out = []
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if " - " in line and len(fields) > 4:
            out.append((_unescape(fields[4]), line.split(" - ", 1)[1].split(" ")[0]))
    return out


def strays(mountinfo: str, covers: list[str]) -> list[str]:
    """Mounts a new host detaches, deepest first: namespace files (they would keep another host's, a task's or
    this lab's namespaces alive) and whatever is mounted below a cover (hidden anyway)."""
    found = {p for p, fstype in mounts(mountinfo) if fstype == "nsfs" or any(_under(p, c) and p != c for c in covers)}
    return sorted(found, key=lambda p: (-p.count("/"), p))


def build(covers: list[str], binds: list[Bind]) -> None:
    """Make the calling process's new mount namespace (see the module doc). Runs in a forked child."""
    linux.unshare(linux.CLONE_NEWNS)
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_SLAVE)
    fds = [(os.open(b.path, os.O_PATH | os.O_CLOEXEC), b) for b in binds]  # in this namespace, before any cover
    for point in strays(Path("/proc/self/mountinfo").read_text(), covers):
        with contextlib.suppress(OSError):  # gone with a parent detached before it
            linux.umount2(point, linux.MNT_DETACH)
    for c in covers:
        if os.path.isdir(c):
            linux.mount("tmpfs", c, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC, "mode=0755")
    for fd, b in fds:
        os.makedirs(os.path.dirname(b.path), mode=0o755, exist_ok=True)
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            os.makedirs(b.path, exist_ok=True)
        else:
            os.close(os.open(b.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        linux.mount(f"/proc/self/fd/{fd}", b.path, None, linux.MS_BIND)
        if not b.writable:
            linux.mount(None, b.path, None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV)
        os.close(fd)


def _mount_points() -> set[str]:
    return {p for p, _ in mounts(Path("/proc/self/mountinfo").read_text())}


def _private_dir(path: Path) -> None:
    """``path`` as a private mount of itself: a namespace file can only be bound where no mount propagates."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    real = os.path.realpath(path)
    if real not in _mount_points():
        linux.mount(real, real, None, linux.MS_BIND)
    linux.mount(None, real, None, linux.MS_PRIVATE)


def create(lab: Lab, node: Node) -> None:
    """Make ``node``'s host namespace and keep it at ``node.mntns``; LabError naming what failed."""
    if not node.mntns:
        raise LabError(f"{node.name} has no mount namespace planned; run `shoal lab down` and `lab up` again")
    target = Path(node.mntns)
    _private_dir(target.parent)
    Path(node.data_dir).mkdir(parents=True, exist_ok=True)
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    covers, binds = view(lab, node)
    covers = [os.path.realpath(c) for c in covers]  # as mountinfo shows them
    binds = [Bind(os.path.realpath(b.path), b.writable) for b in binds]
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child only makes the namespace, then waits to be bound
        os.close(ready_r)
        os.close(done_w)
        try:
            build(covers, binds)
            os.write(ready_w, b"\0")
            os.read(done_r, 1)
            os._exit(0)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent as text
            with contextlib.suppress(OSError):
                os.write(ready_w, str(exc).encode(errors="replace")[:4000] or b"failed")
            os._exit(1)
    os.close(ready_w)
    os.close(done_r)
    try:
        answer = os.read(ready_r, 4096)
        if answer != b"\0":
            raise LabError(f"cannot make {node.name}'s mount namespace: {answer.decode(errors='replace') or 'the helper died'}")
        try:
            linux.mount(f"/proc/{pid}/ns/mnt", str(target), None, linux.MS_BIND)
        except OSError as exc:
            raise LabError(f"cannot keep {node.name}'s mount namespace at {target}: {exc}") from None
    finally:
        os.close(ready_r)
        os.close(done_w)
        os.waitpid(pid, 0)


def join(node: Node) -> None:
    """setns into ``node``'s host namespace, keeping the working directory when the host has it (else /)."""
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = "/"
    fd = os.open(node.mntns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        linux.setns(fd, linux.CLONE_NEWNS)
    finally:
        os.close(fd)
    try:
        os.chdir(cwd)
    except OSError:
        os.chdir("/")


def exists(node: Node) -> bool:
    """Whether the host's namespace is kept (its file is a mount point)."""
    return bool(node.mntns) and os.path.realpath(node.mntns) in _mount_points()
