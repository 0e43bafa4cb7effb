"""Image references as docker reads them: ``name[:tag]``, ``name@sha256:<hex>``, or an image id (prefix).

Pure functions on strings, unit tested without root: ``busybox`` means ``busybox:latest``; a
registry host part (``localhost:5000/app``) is allowed; an id is a full ``sha256:<hex>`` or a hex
prefix (at least 6 characters; a short one that is also a valid name is tried as a name too, by
the store's lookup).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shoal.runtime.errors import ConfigError

NAME_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
HOST_PART_RE = re.compile(r"^[A-Za-z0-9.-]+(?::[0-9]+)?$")
TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
ID_PREFIX_RE = re.compile(r"^(?:sha256:)?[0-9a-f]{6,64}$")


@dataclass(frozen=True)
class Ref:
    """A parsed image reference: ``name:tag``, ``name@digest``, or an image id (prefix)."""

    name: str = ""
    tag: str = ""
    digest: str = ""
    id_prefix: str = ""

    def __str__(self) -> str:
        if self.id_prefix:
            return self.id_prefix
        return f"{self.name}@{self.digest}" if self.digest else f"{self.name}:{self.tag}"


def parse_ref(text: str, allow_id: bool = True) -> Ref:
    """Parse a reference as docker does; raises ConfigError on a malformed one."""
    if not text or len(text) > 255 or text != text.strip():
        raise ConfigError(f"invalid reference format: {text!r}")
    if allow_id and ID_PREFIX_RE.fullmatch(text) and ("sha256:" in text or len(text) >= 12 or not _is_name(text)):
        return Ref(id_prefix=text.removeprefix("sha256:"))
    name, digest = text, ""
    if "@" in text:
        name, _, digest = text.partition("@")
        if not DIGEST_RE.fullmatch(digest):
            raise ConfigError(f"invalid reference format: bad digest in {text!r}")
    tag = ""
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, tag = name.rpartition(":")
        if not TAG_RE.fullmatch(tag):
            raise ConfigError(f"invalid reference format: bad tag in {text!r}")
    if not _is_name(name):
        raise ConfigError(f"invalid reference format: repository name must be lowercase: {text!r}")
    return Ref(name=name, tag=tag or ("" if digest else "latest"), digest=digest)


def _is_name(name: str) -> bool:
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost") and HOST_PART_RE.fullmatch(first):
        return bool(NAME_RE.fullmatch(rest))
    return bool(NAME_RE.fullmatch(name))


def normalize_tag(text: str) -> str:
    """``busybox`` -> ``busybox:latest``; a RepoTag as stored in the image store."""
    ref = parse_ref(text, allow_id=False)
    if ref.digest:
        raise ConfigError(f"a tag cannot be a digest reference: {text!r}")
    return f"{ref.name}:{ref.tag}"
