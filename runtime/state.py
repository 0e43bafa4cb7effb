"""The runtime's state directory: where each container's files live and how its state is persisted.

Layout (``state_dir`` is owned by one launcher at a time, guarded by ``launcher.lock``)::

    state_dir/launcher.sock      unix socket the agent talks to
    state_dir/launcher.lock      flock held by the running launcher
    state_dir/launcher.log       the launcher's own log (JSON lines)
    state_dir/containers/<id>/state.json   one JSON document per container (see ContainerState)
    state_dir/containers/<id>/ctr.log      the container's stdout and stderr
    state_dir/containers/<id>/rootfs/      mount point of the container's root (inside its mount ns)
    state_dir/containers/<id>/upper/, work/  the overlay's writable layer (images other than host)
    state_dir/images/                      the default image store (see imagestore)
    state_dir/volumes/<name>/_data         named volumes

State files are replaced atomically (write, fsync-free rename) so a crash leaves the old or the new
version, never half of one. Everything needed to re-attach to a running container after a launcher
restart is in ``state.json``: pid and its start time (to detect pid reuse), the cgroup paths and the
config.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoal.runtime.config import STATUS_CREATED, ContainerConfig, ContainerInfo


class Layout:
    """Paths inside one runtime's state directory."""

    def __init__(self, state_dir: str | Path) -> None:
        self.root = os.path.abspath(os.fspath(state_dir))
        self.containers = os.path.join(self.root, "containers")
        self.socket = os.path.join(self.root, "launcher.sock")
        self.lock = os.path.join(self.root, "launcher.lock")
        self.launcher_log = os.path.join(self.root, "launcher.log")

    def container_dir(self, cid: str) -> str:
        return os.path.join(self.containers, cid)

    def state_file(self, cid: str) -> str:
        return os.path.join(self.containers, cid, "state.json")

    def log_path(self, cid: str) -> str:
        return os.path.join(self.containers, cid, "ctr.log")

    def rootfs(self, cid: str) -> str:
        return os.path.join(self.containers, cid, "rootfs")

    def upper(self, cid: str) -> str:
        """The overlay upper dir: everything the container writes to its image root."""
        return os.path.join(self.containers, cid, "upper")

    def work(self, cid: str) -> str:
        return os.path.join(self.containers, cid, "work")

    @property
    def default_images(self) -> str:
        return os.path.join(self.root, "images")

    @property
    def volumes(self) -> str:
        return os.path.join(self.root, "volumes")

    def ensure(self) -> None:
        os.makedirs(self.containers, mode=0o700, exist_ok=True)
        os.chmod(self.root, 0o700)


@dataclass
class ContainerState:
    """Everything the launcher persists about one container."""

    id: str
    config: dict[str, Any]
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
    uid: int = 0
    gid: int = 0
    groups: list[int] = field(default_factory=list)
    home: str = "/root"
    argv: list[str] = field(default_factory=list)
    """Resolved at create from the config and the image (see prepare.resolve)."""
    env: list[str] = field(default_factory=list)
    workdir: str = "/"
    image_id: str = ""
    lowerdirs: list[str] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    caps: int = 0

    @property
    def container_config(self) -> ContainerConfig:
        return ContainerConfig.from_dict(self.config)

    def info(self) -> ContainerInfo:
        return ContainerInfo(
            id=self.id,
            image=self.config.get("image", ""),
            status=self.status,
            pid=self.pid if self.status == "running" else 0,
            exit_code=self.exit_code,
            oom_killed=self.oom_killed,
            created_at=self.created_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            labels=dict(self.config.get("labels", {})),
            log_path=self.log_path,
            cgroup=self.cgroup,
            command=list(self.argv or self.config.get("args", [])),
            image_id=self.image_id,
        )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ContainerState:
        data = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


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
