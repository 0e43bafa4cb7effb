"""Container mounts as docker writes them (``--mount type=...,source=...,target=...``), checked once.

One rule for every entry point: ``shoal run`` and the runtime (shoal.runtime.mounts), ``svc create``
and ``svc update --mount-add`` (the CLI), the manager's spec validation (shoal.spec_container) and
the stack loader all parse and normalize through here, so a mount refused in one place is refused
in all with the same message. Pure functions on strings and dicts; errors are MountError (a
ValueError) naming what is wrong.

The normalized form is a dict: ``type`` (bind, volume, tmpfs), ``source`` (a host path, a volume
name, "" for an anonymous volume or a tmpfs), ``target`` (absolute, normalized), ``readonly``,
``volume_nocopy`` (do not copy the image's content into a new volume), ``volume_subpath`` (a
directory inside the volume to mount instead of its root, "" for the root), ``bind_propagation``
(one of PROPAGATIONS, "" for docker's default rprivate), ``tmpfs_size`` (bytes, 0: the kernel's
default) and ``tmpfs_mode`` (0: 1777). What it closes:

* a target must be absolute, must not contain a ``..`` component and is normalized (no ``//``,
  no trailing ``/``); ``/``, ``/proc``, ``/sys`` and ``/dev`` cannot be covered;
* a volume name is ``[A-Za-z0-9][A-Za-z0-9_.-]*``: no ``/``, so it cannot name a directory outside
  the node's volumes directory (``../../etc``, ``/etc``);
* a volume subpath is relative, without ``..``: it names a directory inside the volume (the runtime
  resolves it again beneath the volume's directory at start, so a symlink in the volume that leads
  out of it is refused there);
* a bind source is an absolute host path without ``..``: binding a host path is root-equivalent, as
  in docker, and allowed as docker allows it;
* a source or target with a template (``{{.Task.Slot}}``) is checked as it would expand.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from shoal import units

TYPES = ("bind", "volume", "tmpfs")
VOLUME_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
RESERVED_TARGETS = ("/", "/proc", "/sys", "/dev")
MAX_TMPFS_MODE = 0o7777
PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
_UNSUPPORTED_KEYS = ("bind-nonrecursive", "volume-driver", "volume-label", "volume-opt", "consistency", "tmpfs-options")


class MountError(ValueError):
    """An invalid mount; the message is the one line shown to the user."""


def clean_path(what: str, path: str) -> str:
    """``path`` normalized; MountError unless it is absolute and has no ``..`` component."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise MountError(f"invalid {what} {path!r}: must be an absolute path")
    if "\x00" in path:
        raise MountError(f"invalid {what} {path!r}: contains a NUL byte")
    if ".." in path.split("/"):
        raise MountError(f"invalid {what} {path!r}: must not contain '..'")
    return posixpath.normpath(path).replace("//", "/")


def _bool(key: str, value: str, text: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("", "1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise MountError(f"invalid value {value!r} for {key} in {text!r}: use true or false")


def parse(text: str) -> dict[str, Any]:
    """docker's ``--mount`` syntax (keys and aliases) -> the normalized mount dict."""
    m: dict[str, Any] = {"type": "volume"}
    for part in text.split(","):
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        if key in ("readonly", "ro"):
            m["readonly"] = _bool(key, value, text) if eq else True
        elif key == "volume-nocopy":
            m["volume_nocopy"] = _bool(key, value, text) if eq else True
        elif key == "type":
            m["type"] = value.strip()
        elif key in ("source", "src"):
            m["source"] = value
        elif key in ("target", "destination", "dst"):
            m["target"] = value
        elif key == "tmpfs-size":
            try:
                m["tmpfs_size"] = units.parse_bytes(value)
            except units.UnitError as exc:
                raise MountError(f"invalid tmpfs-size in {text!r}: {exc}") from None
        elif key == "tmpfs-mode":
            m["tmpfs_mode"] = _mode(value, text)
        elif key == "volume-subpath":
            m["volume_subpath"] = value
        elif key == "bind-propagation":
            m["bind_propagation"] = value.strip().lower()
        elif key in _UNSUPPORTED_KEYS:
            raise MountError(f"mount option {key!r} is not supported (in {text!r})")
        else:
            raise MountError(f"unexpected key {key!r} in {text!r}")
    return normalize(m)


def _mode(value: str, text: str) -> int:
    try:
        mode = int(value.strip(), 8)
    except ValueError:
        raise MountError(f"invalid tmpfs-mode {value!r} in {text!r}: expected an octal mode such as 1777") from None
    if not 0 <= mode <= MAX_TMPFS_MODE:
        raise MountError(f"invalid tmpfs-mode {value!r} in {text!r}: must be at most 7777")
    return mode


def parse_volume(text: str) -> dict[str, Any]:
    """``-v SRC:DST[:ro|rw]``: an absolute SRC is a bind mount, otherwise a named volume."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise MountError(f"invalid volume specification: {text!r} (use SRC:DST[:ro])")
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise MountError(f"invalid volume mode {mode!r} in {text!r}: use ro or rw")
    kind = "bind" if parts[0].startswith("/") else "volume"
    return normalize({"type": kind, "source": parts[0], "target": parts[1], "readonly": mode == "ro"})


def _target(target: str) -> str:
    from shoal import templates  # loaded with the first mount (`shoal run` without one does not)

    shown = templates.check(target) if templates.has_template(target) else target
    clean = clean_path("mount target", shown)
    if clean in RESERVED_TARGETS:
        raise MountError(f"invalid mount target {clean!r}: reserved")
    return target if templates.has_template(target) else clean


def _source(kind: str, source: str) -> str:
    from shoal import templates  # loaded with the first mount (`shoal run` without one does not)

    templated = templates.has_template(source)
    shown = templates.check(source) if templated else source
    if kind == "bind":
        if not shown:
            raise MountError("a bind mount needs a source (an absolute host path)")
        clean = clean_path("bind source", shown)
        return source if templated else clean
    if kind == "volume":
        if shown and not VOLUME_NAME_RE.fullmatch(shown):
            raise MountError(f"invalid volume name {shown!r}: use [A-Za-z0-9][A-Za-z0-9_.-]* (at most 128)")
        return source
    if source:
        raise MountError("a tmpfs mount takes no source")
    return ""


def clean_subpath(subpath: str) -> str:
    """A volume subpath normalized (no ``.``, ``//`` or trailing ``/``); MountError unless it is a
    relative path without ``..`` (it must stay inside the volume)."""
    if not isinstance(subpath, str):
        raise MountError(f"invalid volume subpath {subpath!r}: must be a relative path inside the volume")
    if "\x00" in subpath:
        raise MountError(f"invalid volume subpath {subpath!r}: contains a NUL byte")
    if subpath.startswith("/") or ".." in subpath.split("/"):
        raise MountError(f"invalid volume subpath {subpath!r}: must be a relative path inside the volume, without '..'")
    clean = posixpath.normpath(subpath) if subpath else ""
    return "" if clean == "." else clean


def _options(kind: str, m: dict[str, Any]) -> tuple[str, str]:
    """The volume subpath (a template kept as written, checked as it would expand) and bind propagation
    of ``m``, checked against its type."""
    from shoal import templates

    subpath = m.get("volume_subpath") or ""
    if isinstance(subpath, str) and templates.has_template(subpath):
        clean_subpath(templates.check(subpath))
    else:
        subpath = clean_subpath(subpath)
    propagation = m.get("bind_propagation") or ""
    if subpath and kind != "volume":
        raise MountError(f"volume-subpath is only for volume mounts, not {kind}")
    if propagation and kind != "bind":
        raise MountError(f"bind-propagation is only for bind mounts, not {kind}")
    if propagation and propagation not in PROPAGATIONS:
        raise MountError(f"invalid bind-propagation {propagation!r}: use one of {', '.join(PROPAGATIONS)}")
    return subpath, propagation


def normalize(m: dict[str, Any]) -> dict[str, Any]:
    """A normalized copy of mount ``m`` (see the module docstring); MountError naming what is wrong."""
    from shoal import templates

    kind = m.get("type")
    if kind not in TYPES:
        raise MountError(f"invalid mount type {kind!r}: use bind, volume or tmpfs")
    try:
        target = _target(str(m.get("target") or ""))
        source = _source(kind, str(m.get("source") or ""))
        subpath, propagation = _options(kind, m)
    except templates.TemplateError as exc:
        raise MountError(str(exc)) from None
    size, mode = m.get("tmpfs_size") or 0, m.get("tmpfs_mode") or 0
    if not isinstance(size, int) or size < 0:
        raise MountError("tmpfs-size must be a size >= 0")
    if not isinstance(mode, int) or not 0 <= mode <= MAX_TMPFS_MODE:
        raise MountError("tmpfs-mode must be an octal mode of at most 7777")
    if kind != "tmpfs" and (size or mode):
        raise MountError(f"tmpfs-size and tmpfs-mode are only for tmpfs mounts, not {kind}")
    if kind != "volume" and m.get("volume_nocopy"):
        raise MountError(f"volume-nocopy is only for volume mounts, not {kind}")
    return {
        "type": kind, "source": source, "target": target, "readonly": bool(m.get("readonly")),
        "volume_nocopy": bool(m.get("volume_nocopy")), "tmpfs_size": size, "tmpfs_mode": mode,
        "volume_subpath": subpath, "bind_propagation": propagation,
    }


def normalize_all(mounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every mount normalized; MountError also when two mounts share a target."""
    result = [normalize(m) for m in mounts]
    targets = [m["target"] for m in result]
    dupes = sorted({t for t in targets if targets.count(t) > 1})
    if dupes:
        raise MountError(f"duplicate mount point: {dupes[0]}")
    return result
