"""The runtime's state directory: where the launcher's socket, each container's files and the stores live.

Layout (``state_dir`` is owned by one launcher at a time, guarded by ``launcher.lock``)::

    state_dir/launcher.sock      unix socket the agent talks to
    state_dir/launcher.lock      flock held by the running launcher
    state_dir/launcher.log       the launcher's own log (JSON lines)
    state_dir/containers/<id>/state.json   one JSON document per container (see ContainerState)
    state_dir/containers/<id>/ctr.log      the container's stdout and stderr
    state_dir/containers/<id>/rootfs/      mount point of the container's root (inside its mount ns)
    state_dir/containers/<id>/upper/, work/  the overlay's writable layer (images other than host)
    state_dir/images/                      the default image store (see image/store.py)
    state_dir/volumes/<name>/_data         named volumes

Both processes use it: the client to find the socket, the launcher's log and the default image
store; the launcher for everything else (see launcher/state.py for the state file itself).
"""

from __future__ import annotations

import os


class Layout:
    """Paths inside one runtime's state directory."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
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
