"""What a container config resolves to at create time: argv, env, identity, caps, layers, mounts.

The launcher calls ``resolve`` once per ``create`` and persists the result in the container's state,
so a start (or a re-attached launcher) never looks at the image store again, and removing an image
later cannot change a container made from it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import Any

from shoal.runtime import caps, imagecfg, mounts, users
from shoal.runtime.config import ContainerConfig
from shoal.runtime.imagestore import ImageStore
from shoal.runtime.volumes import VolumeStore

HOST_IMAGE = "host"


@dataclass
class Resolved:
    argv: list[str]
    env: list[str]
    workdir: str
    identity: users.Identity
    caps: int
    image_id: str = ""
    lowerdirs: list[str] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    """Validated mounts; a volume's ``source`` is replaced by its host directory (``volume`` kept)."""


def resolve(cfg: ContainerConfig, images: ImageStore, volumes: VolumeStore) -> Resolved:
    """Combine ``cfg`` with its image; raises ImageNotFound / ConfigError. Creates named volumes."""
    if cfg.image == HOST_IMAGE:
        image_id, lowerdirs, img = HOST_IMAGE, [], {}
    else:
        image = images.get(cfg.image)
        image_id, lowerdirs, img = image.id, images.lowerdirs(image), image.runtime_config
    argv = imagecfg.argv(cfg.entrypoint, cfg.args, img.get("Entrypoint"), img.get("Cmd"))
    env = imagecfg.merge_env(img.get("Env"), cfg.env)
    workdir = imagecfg.workdir(cfg.workdir, img.get("WorkingDir"))
    user = imagecfg.user(cfg.user, img.get("User"))
    if lowerdirs:
        texts = [_read_in_layers(lowerdirs, name) for name in ("etc/passwd", "etc/group")]
        identity = users.resolve(user, texts[0], texts[1])
    else:
        identity = users.resolve_in_rootfs(user, "/")
    cap_mask = caps.adjust(cfg.cap_add, cfg.cap_drop)
    resolved_mounts = mounts.validate_all(cfg.mounts)
    mounts.check_sources(resolved_mounts)
    for m in resolved_mounts:
        if m["type"] == "volume":
            m["volume"] = m["source"]
            m["source"] = volumes.ensure(m["source"]).mountpoint
    return Resolved(argv, env, workdir, identity, cap_mask, image_id, lowerdirs, resolved_mounts)


def _read_in_layers(lowerdirs: list[str], rel: str) -> str:
    """A file's text as the overlay would show it (top layer first; a whiteout hides it)."""
    for layer in lowerdirs:
        path = os.path.join(layer, rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return ""
        if stat.S_ISREG(st.st_mode):
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        return ""
    return ""
