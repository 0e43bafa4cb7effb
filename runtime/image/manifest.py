"""Which images an archive holds: docker-save ``manifest.json`` or an OCI ``index.json``, as plain entries.

Pure parsing (JSON in, ``Entry`` out; blobs come through a ``read`` callable), so both archive
formats are unit tested without a tarball. OCI blobs are checked against the digests that name
them; nested indexes are followed two levels deep; manifests for another CPU architecture are
skipped. load.py does the reading, extraction and verification of the layers.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from typing import Any, NamedTuple

from shoal.runtime.errors import ImageLoadError
from shoal.runtime.image.store import hex_of

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


class Entry(NamedTuple):
    """One image of an archive: where its config is, what it must hash to, its tags and layers."""

    config_name: str
    config_digest: str
    """``sha256:<hex>`` the config must hash to; "" when the archive does not say."""
    tags: list[str]
    layers: list[tuple[str, str]]
    """(archive member name, blob digest or "") per layer, bottom first."""


def docker_entries(manifest: Any) -> list[Entry]:
    """The images of a docker-save ``manifest.json``."""
    if not isinstance(manifest, list):
        raise ImageLoadError("manifest.json must be a list")
    entries = []
    for item in manifest:
        config = item["Config"]
        digest = "sha256:" + os.path.basename(config).removesuffix(".json")
        digest = digest if len(hex_of(digest)) == 64 else ""
        layers = [(name, "") for name in item["Layers"]]
        entries.append(Entry(config, digest, list(item.get("RepoTags") or []), layers))
    return entries


def oci_entries(index: Any, read: Callable[[str], bytes], arch: str | None = None) -> list[Entry]:
    """The images of an OCI ``index.json`` for ``arch`` (default: this machine's)."""
    want = arch or machine_arch()
    entries: list[Entry] = []

    def blob(digest: str) -> bytes:
        data = read(f"blobs/sha256/{hex_of(digest)}")
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise ImageLoadError(f"blob {digest}: digest mismatch")
        return data

    def walk(descs: list[dict], depth: int) -> None:
        for desc in descs:
            media = desc.get("mediaType", "")
            if media in INDEX_TYPES and depth < 2:
                walk(json.loads(blob(desc["digest"])).get("manifests") or [], depth + 1)
                continue
            platform = desc.get("platform") or {}
            if platform and platform.get("architecture") not in (None, want):
                continue
            manifest = json.loads(blob(desc["digest"]))
            entries.append(_oci_entry(desc, manifest))

    walk(index.get("manifests") or [], 0)
    return entries


def _oci_entry(desc: dict, manifest: dict) -> Entry:
    annotations = desc.get("annotations") or {}
    name = annotations.get("io.containerd.image.name") or annotations.get("org.opencontainers.image.ref.name")
    tags = [name] if name and (":" in name or "/" in name) else []
    cfg = manifest["config"]["digest"]
    layers = [(f"blobs/sha256/{hex_of(d['digest'])}", d["digest"]) for d in manifest["layers"]]
    return Entry(f"blobs/sha256/{hex_of(cfg)}", cfg, tags, layers)


def machine_arch() -> str:
    """This machine's architecture in OCI's words (amd64, arm64, ...)."""
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
