"""How the launcher persists each container's state in the state directory (paths: ``shoal.runtime.layout``).

State files are replaced atomically (write, fsync-free rename) so a crash leaves the old or the new
version, never half of one. Everything needed to re-attach to a running container after a launcher
restart is in ``state.json``: pid and its start time (to detect pid reuse), the cgroup paths, the
validated spec the client sent and what it resolved to at create. A state file written before the
spec/resolved split (no ``format``) is read through legacy.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass, field

from shoal.runtime.config import STATUS_CREATED, ContainerInfo
from shoal.runtime.launcher import legacy
from shoal.runtime.launcher.resolve import Resolved
from shoal.runtime.layout import Layout
from shoal.runtime.ports import describe
from shoal.runtime.spec import ContainerSpec

FORMAT = 2
"""The state file's format: 2 holds ``spec`` and ``resolved``; files without it are format 1."""


@dataclass
class ContainerState:
    """Everything the launcher persists about one container: its spec, what it resolved to, its life."""

    id: str
    spec: ContainerSpec
    resolved: Resolved
    status: str = STATUS_CREATED
    pid: int = 0
    pid_start_time: int = 0
    """Field 22 of /proc/<pid>/stat when started, to tell our process from a reused pid."""
    exit_code: int | None = None
    oom_killed: bool = False
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    cgroup: str = ""
    cgroup_dirs: list[str] = field(default_factory=list)
    log_path: str = ""
    net_address: str = ""
    """Its address on the standalone bridge while it publishes ports (launcher/hostnet.py), else ""."""

    def info(self) -> ContainerInfo:
        return ContainerInfo(
            id=self.id,
            image=self.spec.image,
            status=self.status,
            pid=self.pid if self.status == "running" else 0,
            exit_code=self.exit_code,
            oom_killed=self.oom_killed,
            created_at=self.created_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            labels=dict(self.spec.labels),
            log_path=self.log_path,
            cgroup=self.cgroup,
            command=list(self.resolved.argv),
            image_id=self.resolved.image_id,
            ports=[describe(e) for e in self.spec.publish] if self.net_address else [],
        )

    def to_json(self) -> str:
        data = {name: getattr(self, name) for name in _LIFE_FIELDS}
        data.update(spec=self.spec.to_dict(), resolved=self.resolved.to_dict(), format=FORMAT)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ContainerState:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            data = legacy.convert(data)
        data["spec"] = ContainerSpec.from_dict(data["spec"])
        data["resolved"] = Resolved.from_dict(data["resolved"])
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


_LIFE_FIELDS = tuple(f.name for f in dataclasses.fields(ContainerState) if f.name not in ("spec", "resolved"))


def save(layout: Layout, state: ContainerState) -> None:
    """Atomically replace the container's state file."""
    path = layout.state_file(state.id)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(state.to_json())
    os.replace(tmp, path)


def load_all(layout: Layout) -> tuple[dict[str, ContainerState], list[str]]:
    """Every container with a readable state file, and the ids of container dirs without one."""
    states: dict[str, ContainerState] = {}
    orphans: list[str] = []
    try:
        names = sorted(os.listdir(layout.containers))
    except FileNotFoundError:
        return states, orphans
    for name in names:
        try:
            with open(layout.state_file(name), encoding="utf-8") as f:
                states[name] = ContainerState.from_json(f.read())
        except (OSError, ValueError, TypeError):
            orphans.append(name)
    return states, orphans


def remove_container_dir(layout: Layout, cid: str) -> None:
    """Remove a container's directory, its state file last so a crash midway stays recognisable."""
    directory = layout.container_dir(cid)
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
    for entry in sorted(entries, key=lambda e: e.name == "state.json"):
        if entry.is_dir(follow_symlinks=False):
            _remove_tree(entry.path)
        else:
            os.unlink(entry.path)
    os.rmdir(directory)


def _remove_tree(path: str) -> None:
    """rmtree, with a plain rmdir first: rootfs and often upper are empty, work holds one empty dir."""
    for empty_first in (os.path.join(path, "work"), path):
        try:
            os.rmdir(empty_first)
        except OSError:
            continue
        if empty_first == path:
            return
    shutil.rmtree(path)


def proc_start_time(pid: int) -> int:
    """Start time of ``pid`` in clock ticks since boot (0 if it does not exist)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    return int(fields[19]) if len(fields) > 19 else 0
