"""What a validated container spec resolves to at create time against its image: argv, env, identity, layers.

The launcher calls ``resolve`` once per ``create`` and persists the result in the container's state,
so a start (or a re-attached launcher) never looks at the image store again, and removing an image
later cannot change a container made from it. Only what needs the node's stores is done here (the
image's config and layers, users from its /etc/passwd, bind sources, named volumes); the rules that
need no store were applied once by the client (see shoal.runtime.spec).
"""

from __future__ import annotations

import dataclasses
import os
import stat
from dataclasses import dataclass, field
from typing import Any

from shoal.runtime import mounts
from shoal.runtime.image import config as imagecfg
from shoal.runtime.image.store import ImageStore
from shoal.runtime.launcher import users
from shoal.runtime.launcher.child import mountopts
from shoal.runtime.launcher.child.rootfs import api_dirs_in_layers
from shoal.runtime.launcher.volumes import VolumeStore
from shoal.runtime.spec import HOST_IMAGE, ContainerSpec, effective_env


@dataclass
class Resolved:
    """The spec combined with its image: everything its processes need, with no lookup left."""

    argv: list[str]
    env: list[str]
    """The full environment: the image's Env, the spec's entries over it, Docker's defaults."""
    workdir: str
    uid: int
    gid: int
    groups: list[int]
    home: str
    image_id: str = ""
    lowerdirs: list[str] = field(default_factory=list)
    """Image layers, top first; empty for the host image."""
    api_dirs: bool = False
    """The image has /proc, /dev and /sys as plain directories (PID 1 need not make them)."""
    mounts: list[dict[str, Any]] = field(default_factory=list)
    """The spec's mounts; a volume's ``source`` is replaced by its host directory (``volume`` kept)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape; shallow, like ContainerSpec.to_dict (serialize it, do not keep it)."""
        return {name: getattr(self, name) for name in _RESOLVED_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Resolved:
        return cls(**data)


_RESOLVED_FIELDS = tuple(f.name for f in dataclasses.fields(Resolved))


def resolve(spec: ContainerSpec, images: ImageStore, volumes: VolumeStore) -> Resolved:
    """Combine ``spec`` with its image; raises ImageNotFound / ConfigError. Creates named volumes."""
    if spec.image == HOST_IMAGE:
        image_id, lowerdirs, img = HOST_IMAGE, [], {}
    else:
        image = images.get(spec.image)
        image_id, lowerdirs, img = image.id, images.lowerdirs(image), image.runtime_config
    argv = imagecfg.argv(spec.entrypoint, spec.args, img.get("Entrypoint"), img.get("Cmd"))
    env = imagecfg.merge_env(img.get("Env"), spec.env)
    workdir = imagecfg.workdir(spec.workdir, img.get("WorkingDir"))
    user = imagecfg.user(spec.user, img.get("User"))
    if lowerdirs:
        texts = [_read_in_layers(lowerdirs, name) for name in ("etc/passwd", "etc/group")]
    else:
        texts = [_read_host(name) for name in ("/etc/passwd", "/etc/group")]
    identity = users.resolve(user, texts[0], texts[1])
    groups = users.add_groups(identity.groups, spec.group_add, texts[1], identity.gid)
    return Resolved(
        argv=argv,
        env=effective_env(env, spec.hostname, identity.home),
        workdir=workdir,
        uid=identity.uid,
        gid=identity.gid,
        groups=list(groups),
        home=identity.home,
        image_id=image_id,
        lowerdirs=lowerdirs,
        api_dirs=bool(lowerdirs) and api_dirs_in_layers(lowerdirs),
        mounts=resolve_mounts(spec, volumes),
    )


def resolve_mounts(spec: ContainerSpec, volumes: VolumeStore) -> list[dict[str, Any]]:
    """The spec's mounts with each volume's ``source`` replaced by its host directory (the name kept as
    ``volume``); a volume's subpath is made inside it and a bind's propagation checked against the node's
    mounts now, so a bad one fails the create (PID 1 resolves the subpath again, beneath the volume)."""
    resolved = [dict(m) for m in spec.mounts]
    mounts.check_sources(resolved)
    for m in resolved:
        if m["type"] == "volume":
            m["volume"] = m["source"] or spec.id  # an anonymous volume is named after its container
            m["source"] = volumes.ensure(m["volume"]).mountpoint
            if m.get("volume_subpath"):
                os.close(mountopts.open_subpath(m["source"], m["volume_subpath"]))
        elif m["type"] == "bind":
            mountopts.check_source(m["source"], m.get("bind_propagation") or "")
    return resolved


def _read_host(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


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
