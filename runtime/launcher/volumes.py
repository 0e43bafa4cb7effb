"""Node-local named volumes: a directory per volume, kept across containers.

Layout: ``volumes_root/<name>/_data`` (what containers mount) and ``volumes_root/<name>/meta.json``
(created time, labels). A volume named in a mount is created on first use, as in docker. Removing
a volume that a container (running or not) still names is refused by the launcher, which knows the
containers; this module only does the filesystem part.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from shoal.runtime.errors import ConfigError, VolumeNotFound
from shoal.runtime.image.store import remove_tree
from shoal.runtime.mounts import VOLUME_NAME_RE


@dataclass
class Volume:
    name: str
    mountpoint: str
    created_at: float
    driver: str = "local"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "driver": self.driver,
            "mountpoint": self.mountpoint,
            "created_at": self.created_at,
        }


class VolumeStore:
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def _dir(self, name: str) -> str:
        if not VOLUME_NAME_RE.fullmatch(name):
            raise ConfigError(f"invalid volume name {name!r}: use [A-Za-z0-9][A-Za-z0-9_.-]*")
        return os.path.join(self.root, name)

    def data_path(self, name: str) -> str:
        return os.path.join(self._dir(name), "_data")

    def ensure(self, name: str) -> Volume:
        """The volume ``name``, created if it does not exist yet."""
        directory = self._dir(name)
        if not os.path.isdir(os.path.join(directory, "_data")):
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            os.makedirs(os.path.join(directory, "_data"), mode=0o755, exist_ok=True)
            with open(os.path.join(directory, "meta.json"), "w", encoding="utf-8") as f:
                json.dump({"created_at": time.time()}, f)
        return self.get(name)

    def get(self, name: str) -> Volume:
        directory = self._dir(name)
        try:
            with open(os.path.join(directory, "meta.json"), encoding="utf-8") as f:
                meta = json.load(f)
        except (OSError, ValueError):
            if not os.path.isdir(os.path.join(directory, "_data")):
                raise VolumeNotFound(f"no such volume: {name}") from None
            meta = {}
        return Volume(name, os.path.join(directory, "_data"), float(meta.get("created_at", 0.0)))

    def list(self) -> list[Volume]:
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            try:
                out.append(self.get(name))
            except (VolumeNotFound, ConfigError):
                continue
        return out

    def remove(self, name: str) -> None:
        directory = self._dir(name)
        if not os.path.isdir(directory):
            raise VolumeNotFound(f"no such volume: {name}")
        remove_tree(directory)
