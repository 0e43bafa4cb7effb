"""One cgroup per lab node host, so a host's processes can be found, frozen and killed as a whole.

Each node's processes (daemon, etcd member, ``lab exec`` commands) join ``shoal-lab/<lab>/<node>``
in every hierarchy the runtime uses, and the subtree holds everything that runs on that host: ``lab
kill`` freezes it (v1) or writes ``cgroup.kill`` (v2), SIGKILLs every task in it; ``lab down`` does
the same and removes the directories.

cgroup v1: the lab lives below the lab command's own cgroup; a node's runtime launcher inherits the
node's cgroup and puts its containers below it (``.../<node>/shoal/<node id>/<container>``).

cgroup v2 (nested delegation): the "no internal processes" rule forbids enabling controllers for
children of a cgroup that holds processes, so each host's subtree is delegated in two leaves. The
node's own processes join ``<node>/host``; its runtime gets ``--cgroup-parent /shoal-lab/<lab>/<node>/shoal``
(absolute, so the runtime enables controllers from the root down, past no cgroup with processes in
it). The lab itself sits at the hierarchy root (of the lab command's cgroup namespace) rather than
below the command's cgroup, which on a v2 host holds the command itself. ``create`` enables the
controllers the runtime limits need down to each node, so a node's containers get memory, cpu, io
and pids limits as on a machine of their own.
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


HOST_LEAF = "host"
"""On cgroup v2, the leaf below a node's cgroup that its own processes join."""
RUNTIME_CHILD = "shoal"
"""On cgroup v2, the child of a node's cgroup its runtime puts containers below."""
DELEGATED = ("cpuset", "cpu", "io", "memory", "pids")
"""Controllers handed down to each node on cgroup v2 (those the root offers)."""


def _layout() -> tuple[int, list[cl.CgroupMount]]:
    version, chosen = cl.choose_layout(cl.parse_mountinfo(_read("/proc/self/mountinfo")))
    if version == 0:
        raise LabError("no cgroup filesystem is mounted: a lab needs cgroups")
    return version, chosen


def lab_dirs(lab_name: str) -> list[str]:
    """The lab's cgroup directory in each hierarchy: below this process' own cgroup on v1, at the
    hierarchy root on v2 (see the module docstring)."""
    version, chosen = _layout()
    own = cl.parse_proc_cgroup(_read("/proc/self/cgroup"))
    if version == 2:
        return [cl.host_path(chosen[0], "/", f"/shoal-lab/{lab_name}")]
    return [cl.host_path(m, own.get(sorted(m.controllers)[0], "/"), f"shoal-lab/{lab_name}") for m in chosen]


def node_dirs(lab_cgroups: list[str], node: str) -> list[str]:
    return [os.path.join(d, node) for d in lab_cgroups]


def is_v2(d: str) -> bool:
    """Whether a cgroup directory (existing or not) is in the host's chosen cgroup2 tree."""
    version, chosen = _layout()
    return version == 2 and (d.rstrip("/") + "/").startswith(chosen[0].mountpoint.rstrip("/") + "/")


def join_dirs(dirs: list[str]) -> list[str]:
    """The cgroups a node's own process joins: the node's cgroup on v1, its ``host`` leaf on v2."""
    return [os.path.join(d, HOST_LEAF) if is_v2(d) else d for d in dirs]


def runtime_parent(dirs: list[str]) -> str:
    """The ``--cgroup-parent`` a node's daemon gets: "" on v1 (its runtime's default below the node's
    cgroup), on v2 the absolute path of ``<node>/shoal`` from the hierarchy root."""
    if not dirs or not is_v2(dirs[0]):
        return ""
    _, chosen = _layout()
    return "/" + os.path.relpath(os.path.join(dirs[0], RUNTIME_CHILD), chosen[0].mountpoint)


def chain(mountpoint: str, d: str) -> list[str]:
    """The directories from the hierarchy root down to ``d``, root first (pure)."""
    rel = os.path.relpath(d, mountpoint)
    out = [mountpoint]
    for part in [] if rel == "." else rel.split("/"):
        out.append(os.path.join(out[-1], part))
    return out


def create(dirs: list[str]) -> None:
    """Make a node's cgroups; on v2 also its ``host`` leaf, with the controllers delegated down to it."""
    for d in dirs:
        if is_v2(d):
            root = _layout()[1][0].mountpoint
            available = _read(os.path.join(root, "cgroup.controllers")).split()
            delegate(root, d, [c for c in DELEGATED if c in available])
            os.makedirs(os.path.join(d, HOST_LEAF), exist_ok=True)
        os.makedirs(d, exist_ok=True)


def delegate(root: str, node_dir: str, controllers: list[str]) -> None:
    """Make ``node_dir`` and enable ``controllers`` in every ``cgroup.subtree_control`` from ``root`` down
    to it (v2), so its children can have limits; one clear error when a cgroup on the way holds processes."""
    os.makedirs(node_dir, exist_ok=True)
    if not controllers:
        return
    for d in chain(root, node_dir):
        try:
            _write(os.path.join(d, "cgroup.subtree_control"), " ".join(f"+{c}" for c in controllers))
        except OSError as exc:
            busy = " (it holds processes: cgroup v2's 'no internal processes' rule)" if exc.errno == errno.EBUSY else ""
            raise LabError(f"cannot delegate {', '.join(controllers)} to {node_dir}: {d}: {exc.strerror}{busy}") from None


def join_self(dirs: list[str]) -> None:
    """Move the calling process into a node's cgroups (used right before exec)."""
    for d in join_dirs(dirs):
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
