"""Pure image knowledge: image references, and how an image's config combines with a container's.

Docker's rules, as plain functions on plain data so they are unit tested without root:
``busybox`` means ``busybox:latest``; a reference may also be ``name@sha256:<hex>`` or an image id
(full ``sha256:<hex>`` or a unique hex prefix). A command given to the container replaces the
image's Cmd; an entrypoint override replaces the image's Entrypoint *and* drops its Cmd; Env entries
of the container override the image's by key; WorkingDir and User apply unless the container sets
its own.
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
    if allow_id and ID_PREFIX_RE.match(text) and ("sha256:" in text or len(text) >= 12 or not _is_name(text)):
        return Ref(id_prefix=text.removeprefix("sha256:"))
    name, digest = text, ""
    if "@" in text:
        name, _, digest = text.partition("@")
        if not DIGEST_RE.match(digest):
            raise ConfigError(f"invalid reference format: bad digest in {text!r}")
    tag = ""
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, tag = name.rpartition(":")
        if not TAG_RE.match(tag):
            raise ConfigError(f"invalid reference format: bad tag in {text!r}")
    if not _is_name(name):
        raise ConfigError(f"invalid reference format: repository name must be lowercase: {text!r}")
    return Ref(name=name, tag=tag or ("" if digest else "latest"), digest=digest)


def _is_name(name: str) -> bool:
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost") and HOST_PART_RE.match(first):
        return bool(NAME_RE.match(rest))
    return bool(NAME_RE.match(name))


def normalize_tag(text: str) -> str:
    """``busybox`` -> ``busybox:latest``; a RepoTag as stored in the image store."""
    ref = parse_ref(text, allow_id=False)
    if ref.digest:
        raise ConfigError(f"a tag cannot be a digest reference: {text!r}")
    return f"{ref.name}:{ref.tag}"


def argv(
    entrypoint_override: list[str] | None,
    args: list[str],
    image_entrypoint: list[str] | None,
    image_cmd: list[str] | None,
) -> list[str]:
    """The process' argv from the container's settings and the image's (docker's precedence)."""
    if entrypoint_override is not None:
        entry = [a for a in entrypoint_override if a] if entrypoint_override != [""] else []
        cmd = list(args)
    else:
        entry = list(image_entrypoint or [])
        cmd = list(args) if args else list(image_cmd or [])
    result = entry + cmd
    if not result or not result[0]:
        raise ConfigError("no command specified: the image has no Entrypoint or Cmd; give a command")
    return result


def merge_env(image_env: list[str] | None, env: list[str]) -> list[str]:
    """The image's Env with the container's entries overriding by key (order kept)."""
    mine = {e.partition("=")[0]: e for e in env}
    merged = [e for e in image_env or [] if e.partition("=")[0] not in mine]
    return merged + list(env)


def workdir(container_workdir: str, image_workdir: str | None) -> str:
    wd = container_workdir or image_workdir or "/"
    if not wd.startswith("/"):
        wd = "/" + wd  # docker treats a relative WorkingDir in an image as relative to /
    return wd


def user(container_user: str, image_user: str | None) -> str:
    return container_user or image_user or ""


def exposed_ports(config: dict) -> list[str]:
    return sorted((config.get("ExposedPorts") or {}).keys())
