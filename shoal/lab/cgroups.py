"""One cgroup per lab node host, so a host's processes can be found, frozen and killed as a whole.

Each node's processes (daemon, etcd member, ``lab exec`` commands) join ``shoal-lab/<lab>/<node>``
below the lab command's own cgroup in every hierarchy the runtime uses. The node's runtime launcher
inherits it and puts its containers *below* it (``.../<node>/shoal/<node id>/<container>``), so the
subtree holds everything that runs on that host: ``lab kill`` freezes it, SIGKILLs every task in it
and thaws it (nothing can fork in between); ``lab down`` does the same and removes the directories.
"""

from __future__ import annotations

import errno
import os
import signal
import time

from shoal.lab.state import LabError
from shoal.runtime.cgroup import hierarchy as cl


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def lab_dirs(lab_name: str) -> list[str]:
    """The lab's cgroup directory in each hierarchy, below this process' own cgroup."""
    mounts = cl.parse_mountinfo(_read("/proc/self/mountinfo"))
    own = cl.parse_proc_cgroup(_read("/proc/self/cgroup"))
    version, chosen = cl.choose_layout(mounts)
    if version == 0:
        raise LabError("no cgroup filesystem is mounted: a lab needs cgroups")
    dirs = []
    for m in chosen:
        key = next(iter(sorted(m.controllers))) if version == 1 else ""
        dirs.append(cl.host_path(m, own.get(key, "/"), f"shoal-lab/{lab_name}"))
    return dirs


def node_dirs(lab_cgroups: list[str], node: str) -> list[str]:
    return [os.path.join(d, node) for d in lab_cgroups]


def create(dirs: list[str]) -> None:
    for d in dirs:
        os.makedirs(d, exist_ok=True)


def join_self(dirs: list[str]) -> None:
    """Move the calling process into these cgroups (used right before exec)."""
    for d in dirs:
        _write(os.path.join(d, "cgroup.procs"), "0")


def pids(dirs: list[str]) -> set[int]:
    """Every process in these cgroups and all cgroups below them."""
    found: set[int] = set()
    for top in dirs:
        for root, _, _ in os.walk(top):
            try:
                found.update(int(p) for p in _read(os.path.join(root, "cgroup.procs")).split())
            except (FileNotFoundError, ProcessLookupError):
                continue
    return found


def _freezer(dirs: list[str]) -> str | None:
    for d in dirs:
        if os.path.exists(os.path.join(d, "freezer.state")):
            return os.path.join(d, "freezer.state")
    return None


def kill_all(dirs: list[str], timeout: float = 5.0) -> None:
    """SIGKILL everything in the subtree (frozen first, so nothing forks meanwhile); wait until empty."""
    if not any(os.path.isdir(d) for d in dirs):
        return
    deadline = time.monotonic() + timeout
    state = _freezer(dirs)
    kill_file = next((os.path.join(d, "cgroup.kill") for d in dirs if os.path.exists(os.path.join(d, "cgroup.kill"))), None)
    while True:
        left = pids(dirs)
        if not left:
            return
        if time.monotonic() > deadline:
            raise LabError(f"processes {sorted(left)} in {dirs[0]} would not die")
        if kill_file:
            _write(kill_file, "1")
        elif state:
            _write(state, "FROZEN")
            try:
                freeze_deadline = time.monotonic() + 1.0
                while _read(state).strip() != "FROZEN" and time.monotonic() < freeze_deadline:
                    time.sleep(0.002)
                for pid in pids(dirs):
                    _signal(pid, signal.SIGKILL)
            finally:
                _write(state, "THAWED")
        else:
            for pid in left:
                _signal(pid, signal.SIGKILL)
        time.sleep(0.02)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def remove(dirs: list[str], timeout: float = 5.0) -> None:
    """Remove the directories and everything below them (deepest first), retrying while tasks drain."""
    deadline = time.monotonic() + timeout
    for top in dirs:
        if not os.path.isdir(top):
            continue
        for root, _, _ in sorted(os.walk(top, topdown=False), key=lambda w: -w[0].count("/")):
            while True:
                try:
                    os.rmdir(root)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise LabError(f"cannot remove cgroup {root}: {exc.strerror}") from None
                    time.sleep(0.01)


def remove_parent_if_empty(lab_cgroups: list[str]) -> None:
    """Drop the shared ``shoal-lab`` directory when no other lab uses it."""
    for d in lab_cgroups:
        try:
            os.rmdir(os.path.dirname(d))
        except OSError:
            pass


def leftovers(lab_cgroups: list[str]) -> list[str]:
    return [d for d in lab_cgroups if os.path.isdir(d)]
