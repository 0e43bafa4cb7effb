"""Checks across a merged stack: references between its parts, dependency cycles, port clashes.

Each service must name an image; every network, named volume, secret and config a service uses must
be declared at the top level; ``depends_on`` must name services of the stack and must not loop; two
services cannot publish the same port in ingress mode. Problems point at the key that refers.
"""

from __future__ import annotations

from collections import Counter

from shoal.stack.errors import Problems
from shoal.stack.model_file import ComposeFile
from shoal.stack.model_service import Service
from shoal.stack.yamlfile import Marks


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
    for net in svc.networks:
        if net != "default" and net not in stack.networks:
            path = (*base, "networks", net)
            problems.add(marks.key(path), (*base, "networks"), f"network {net!r} is not declared in the top-level networks: section")
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
