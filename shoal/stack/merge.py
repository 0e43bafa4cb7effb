"""Merging several compose files (``-c base.yml -c override.yml``) the way docker merges them.

Later files win. Services with the same name are merged key by key: only the keys a later file
actually sets count; mappings (environment, labels, deploy.labels, networks, ulimits, depends_on)
merge by key; ports merge by their whole value, volumes by target, secrets and configs by source;
other lists (cap_add, constraints, ...) are appended, except commands and health tests, which are
replaced; logging options merge when the driver is the same. Top-level networks, volumes, secrets
and configs are replaced by name.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from shoal.stack.model_file import ComposeFile
from shoal.stack.model_service import Logging, Port

_REPLACED_LISTS = frozenset({"command", "entrypoint", "test"})
_KEYED_LISTS = {
    "volumes": lambda m: m.target,
    "secrets": lambda r: r.source,
    "configs": lambda r: r.source,
}


def merge_files(files: list[ComposeFile]) -> ComposeFile:
    """One file holding ``files`` merged in order."""
    base = files[0]
    for over in files[1:]:
        services = dict(base.services)
        for name, svc in over.services.items():
            services[name] = merge_model(services[name], svc) if name in services else svc
        update: dict[str, Any] = {"services": dict(sorted(services.items()))}
        for section in ("networks", "volumes", "secrets", "configs"):
            update[section] = {**getattr(base, section), **getattr(over, section)}
        if over.version is not None:
            update["version"] = over.version
        base = base.model_copy(update=update)
        base.model_fields_set.update(k for k in update if update[k])
    return base


def merge_model(base: Any, over: Any) -> Any:
    """``base`` with every key ``over`` sets merged in (both the same model class)."""
    if isinstance(base, Logging) and isinstance(over, Logging):
        return _merge_logging(base, over)
    update: dict[str, Any] = {}
    for name in over.model_fields_set:
        new, old = getattr(over, name), getattr(base, name)
        update[name] = _merge_value(name, old, new)
    out = base.model_copy(update=update)
    out.model_fields_set.update(update)
    return out


def _merge_value(name: str, old: Any, new: Any) -> Any:
    if new is None or old is None:
        return new if new is not None else old
    if isinstance(new, BaseModel) and type(new) is type(old):
        return merge_model(old, new)
    if isinstance(new, dict):
        return {**old, **new}
    if isinstance(new, list):
        if name in _REPLACED_LISTS:
            return new
        if name == "ports":
            return _merge_ports(old, new)
        if name in _KEYED_LISTS:
            key = _KEYED_LISTS[name]
            merged = {key(v): v for v in old} | {key(v): v for v in new}
            return [merged[k] for k in sorted(merged, key=str)]
        return old + [v for v in new if v not in old]
    return new


def _merge_ports(old: list[list[Port]], new: list[list[Port]]) -> list[list[Port]]:
    """Ports of both, each distinct port once, ordered by published port as docker orders them."""
    seen: dict[str, Port] = {}
    for group in (*old, *new):
        for p in group:
            seen.setdefault(p.model_dump_json(), p)
    return [[p] for p in sorted(seen.values(), key=lambda p: p.published or 0)]


def _merge_logging(base: Logging, over: Logging) -> Logging:
    if base.driver and over.driver and base.driver != over.driver:
        return over
    out = base.model_copy(update={"driver": over.driver or base.driver, "options": {**base.options, **over.options}})
    out.model_fields_set.update(("driver", "options"))
    return out
