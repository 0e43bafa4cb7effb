"""Launcher operations on the node's images and volumes (list, inspect, remove, create).

They run in the launcher because it knows every container: removing an image or a volume that a
container (running or not) still uses is refused, with docker's wording, and a create that resolves
an image cannot interleave with its removal (the launcher serves one request at a time).
Loading an image needs no launcher: the client extracts it (see image/load.py) and renames it in.
"""

from __future__ import annotations

from typing import Any

from shoal.runtime.errors import ConfigError, ImageInUse
from shoal.runtime.image.ref import parse_ref
from shoal.runtime.launcher.supervisor import Supervisor

OPS = frozenset(
    {"image_ls", "image_inspect", "image_rm", "volume_create", "volume_ls", "volume_inspect", "volume_rm"}
)


def handle(sup: Supervisor, op: str, req: dict[str, Any]) -> dict[str, Any]:
    """The reply fields for one of ``OPS``."""
    images, volumes = sup.images, sup.volumes
    if op == "image_ls":
        return {"images": [i.to_dict() for i in images.images()]}
    if op == "image_inspect":
        return {"image": images.get(str(req.get("ref", ""))).to_dict()}
    if op == "image_rm":
        ref = str(req.get("ref", ""))
        with images.locked():
            image = images.get(ref)
            parsed = parse_ref(ref)
            tag = None if parsed.id_prefix or parsed.digest else f"{parsed.name}:{parsed.tag}"
            if not (tag and len(image.repo_tags) > 1):
                users = sorted(cid for cid, st in sup.states.items() if st.resolved.image_id == image.id)
                if users:
                    raise ImageInUse(
                        f"conflict: unable to remove image {ref} ({image.id[7:19]}): "
                        f"container {users[0]} is using it"
                    )
            return {"done": images.remove(image, tag)}
    if op == "volume_create":
        return {"volume": volumes.ensure(str(req.get("name", ""))).to_dict()}
    if op == "volume_ls":
        return {"volumes": [v.to_dict() for v in volumes.list()]}
    name = str(req.get("name", ""))
    users = sorted(
        cid for cid, st in sup.states.items() if any(m.get("volume") == name for m in st.resolved.mounts)
    )
    if op == "volume_inspect":
        return {"volume": volumes.get(name).to_dict() | {"used_by": users}}
    if op == "volume_rm":
        volumes.get(name)
        if users:
            raise ImageInUse(f"remove {name}: volume is in use - [{', '.join(users)}]")
        volumes.remove(name)
        return {"removed": name}
    raise ConfigError(f"unknown operation {op!r}")
