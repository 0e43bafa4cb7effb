"""Merging several compose files (``-c base.yml -c override.yml``) the way docker merges them.

Later files win. Services with the same name are merged key by key: only the keys a later file
actually sets count; mappings (environment, labels, deploy.labels, networks, ulimits, depends_on)
merge by key; ports merge by their whole value, volumes by target, secrets and configs by source;
other lists (cap_add, constraints, ...) are appended, except commands and health tests, which are
replaced; logging options merge when the driver is the same. Top-level networks, volumes, secrets
and configs are replaced by name.

The merged stack is then checked as a whole: each service must name an image; every network,
named volume, secret and config a service uses must be declared at the top level; ``depends_on``
must name services of the stack and must not loop; two services cannot publish the same port in
ingress mode. Problems point at the key that refers.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel

from shoal.stack.errors import Problems
from shoal.stack.model_file import ComposeFile
from shoal.stack.model_service import Logging, Port, Service
from shoal.stack.yamlfile import Marks

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


def check_stack(stack: ComposeFile, marks: Marks, problems: Problems) -> None:
    """Add a problem for every broken reference, dependency cycle and published-port clash."""
    for name, svc in stack.services.items():
        base = ("services", name)
        if not svc.image:
            problems.add(marks.key(base), base, "missing 'image' (a stack deploys images; build: is not supported)")
        _references(stack, name, svc, marks, problems)
    _cycles(stack, marks, problems)
    _port_clashes(stack, marks, problems)


def _references(stack: ComposeFile, name: str, svc: Service, marks: Marks, problems: Problems) -> None:
    base = ("services", name)
    for i, net in enumerate(svc.networks):
        if net != "default" and net not in stack.networks:
            path = (*base, "networks", net)
            where = marks.keys.get(path) or marks.values.get((*base, "networks", i)) or marks.value(path)  # map or list form
            problems.add(where, (*base, "networks"), f"network {net!r} is not declared in the top-level networks: section")
    for i, mount in enumerate(svc.volumes):
        if mount.type == "volume" and mount.source and mount.source not in stack.volumes:
            problems.add(marks.value((*base, "volumes", i)), (*base, "volumes", i), f"volume {mount.source!r} is not declared in the top-level volumes: section")
    for kind in ("secrets", "configs"):
        declared = getattr(stack, kind)
        for i, ref in enumerate(getattr(svc, kind)):
            if ref.source not in declared:
                what = kind[:-1]
                problems.add(marks.value((*base, kind, i)), (*base, kind, i), f"{what} {ref.source!r} is not declared in the top-level {kind}: section")
    for dep in svc.depends_on:
        if dep not in stack.services:
            path = (*base, "depends_on", dep)
            problems.add(marks.key(path), (*base, "depends_on"), f"service {dep!r} is not defined in the stack")


def _cycles(stack: ComposeFile, marks: Marks, problems: Problems) -> None:
    """Report each dependency cycle once, at the depends_on of its first service (by name)."""
    graph = {n: [d for d in s.depends_on if d in stack.services] for n, s in stack.services.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    reported: set[frozenset[str]] = set()

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        path.append(node)
        for dep in graph[node]:
            if state.get(dep) == 1:
                cycle = path[path.index(dep) :]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    first = min(cycle)
                    at = cycle.index(first)
                    ring = [*cycle[at:], *cycle[:at], first]
                    where = ("services", first, "depends_on")
                    problems.add(marks.key(where), where, f"dependency cycle: {' -> '.join(ring)}")
            elif dep not in state:
                visit(dep, path)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def _port_clashes(stack: ComposeFile, marks: Marks, problems: Problems) -> None:
    owners: dict[tuple[int, str], str] = {}
    for name, svc in stack.services.items():
        mine = Counter((p.published, p.protocol or "tcp") for p in svc.port_list() if p.published is not None and p.mode != "host")
        path = ("services", name, "ports")
        for key, count in mine.items():
            if count > 1:
                problems.add(marks.key(path), path, f"port {key[0]}/{key[1]} is published twice")
            other = owners.setdefault(key, name)
            if other != name:
                problems.add(marks.key(path), path, f"port {key[0]}/{key[1]} is already published by service {other!r}")
