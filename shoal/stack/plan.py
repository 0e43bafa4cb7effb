"""The deploy plan: what ``stack deploy`` would create, update (field by field) and remove.

A pure diff of the stack's desired services against the services that run now, both given as plain
data (the spec as a dict, e.g. from ``spec_dict``), so ``--dry-run`` can print it and the deploy
step can carry it out. Services that run but are not in the file are removed only with ``--prune``.
Networks, volumes, secrets and configs are listed as created (or used, when external) until the
cluster has an API to read what exists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format

from shoal.proto import types_pb2 as pb
from shoal.stack.objects import StackPlan

CREATE, UPDATE, REMOVE, UNCHANGED, USE, MISSING = "create", "update", "remove", "unchanged", "use", "missing"
_SIGNS = {CREATE: "+", UPDATE: "~", REMOVE: "-", UNCHANGED: " ", USE: " ", MISSING: "!"}


@dataclass(frozen=True)
class FieldChange:
    """One field of a spec that changes: its dotted path, the old and the new value (None = unset)."""

    path: str
    old: Any
    new: Any


@dataclass
class Change:
    """What happens to one object of the stack."""

    action: str
    kind: str
    name: str
    fields: list[FieldChange] = field(default_factory=list)


@dataclass
class DeployPlan:
    """Every change, services first, then networks, volumes, secrets and configs."""

    changes: list[Change] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    """Services of the stack that are not in the file and stay because ``--prune`` was not given."""

    def of(self, action: str, kind: str = "service") -> list[Change]:
        return [c for c in self.changes if c.action == action and c.kind == kind]


def spec_dict(spec: pb.ServiceSpec) -> dict[str, Any]:
    """A ServiceSpec as plain data with the proto's field names (enums as their names)."""
    return json_format.MessageToDict(spec, preserving_proto_field_name=True)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "l": [{"x": 2}]}`` -> ``{"a.b": 1, "l[0].x": 2}``; lists of scalars stay whole."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def diff_specs(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[FieldChange]:
    """The fields that differ between two spec dicts, sorted by path."""
    a, b = flatten(dict(old)), flatten(dict(new))
    return [FieldChange(k, a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]


def dependency_levels(deps: Mapping[str, set[str]]) -> list[list[str]]:
    """Names in waves: each wave depends only on earlier ones (names sorted within a wave).

    Dependencies outside ``deps`` are ignored; a cycle (refused at load) would put the rest in one wave.
    """
    waves: list[list[str]] = []
    placed: set[str] = set()
    remaining = sorted(deps)
    while remaining:
        ready = [n for n in remaining if deps[n] & set(deps) <= placed] or remaining
        waves.append(ready)
        placed.update(ready)
        remaining = [n for n in remaining if n not in placed]
    return waves


def dependency_order(deps: Mapping[str, set[str]]) -> list[str]:
    """Names with every dependency before its dependents."""
    return [n for wave in dependency_levels(deps) for n in wave]


def plan_deploy(
    stack: StackPlan,
    desired: Mapping[str, Mapping[str, Any]],
    current: Mapping[str, Mapping[str, Any]],
    prune: bool = False,
    networks: set[str] | None = None,
    files: Mapping[str, set[str]] | None = None,
) -> DeployPlan:
    """The plan from the services that run (``current``, by name) to ``desired`` (by name).

    Services come in dependency order (``depends_on``), so a dependency is created first.
    ``networks`` are the names of the networks the cluster has (None: it cannot tell); ``files`` the
    names of its secrets and configs, by kind (None: it cannot tell).
    """
    plan = DeployPlan()
    deps = {name: set(stack.services[name].depends_on) if name in stack.services else set() for name in desired}
    for name in dependency_order(deps):
        if name not in current:
            plan.changes.append(Change(CREATE, "service", name))
            continue
        fields = diff_specs(current[name], desired[name])
        plan.changes.append(Change(UPDATE if fields else UNCHANGED, "service", name, fields))
    for name in sorted(set(current) - set(desired)):
        if prune:
            plan.changes.append(Change(REMOVE, "service", name))
        else:
            plan.kept.append(name)
    for kind in ("network", "volume", "secret", "config"):
        for obj in sorted(stack.of_kind(kind), key=lambda o: o.name):
            if kind == "volume" and not obj.external:
                continue  # named volumes are made on each node when a task first mounts them
            known = networks if kind == "network" else (files or {}).get(kind) if files is not None else None
            exists = known is not None and obj.name in known
            if obj.external:
                action = MISSING if known is not None and not exists else USE
            else:
                action = UNCHANGED if exists else CREATE
            plan.changes.append(Change(action, kind, obj.name))
    return plan


def _text(value: Any) -> str:
    return "(unset)" if value is None else json.dumps(value)


def format_plan(plan: DeployPlan) -> str:
    """The plan as ``nomad job plan`` shows one: a sign, the object, and each field old => new."""
    lines = []
    for c in plan.changes:
        note = {USE: " (external)", MISSING: " (external, not found: create it first)"}.get(c.action, "")
        lines.append(f"{_SIGNS[c.action]} {c.kind} {c.name}: {c.action}{note}")
        lines.extend(f"    {f.path}: {_text(f.old)} => {_text(f.new)}" for f in c.fields)
    for name in plan.kept:
        lines.append(f"  service {name}: not in the stack file, kept (use --prune to remove it)")
    counts = {a: sum(1 for c in plan.changes if c.action == a and c.kind == "service") for a in (CREATE, UPDATE, REMOVE, UNCHANGED)}
    lines.append("services: " + ", ".join(f"{n} to {a}" if a != UNCHANGED else f"{n} unchanged" for a, n in counts.items()))
    return "\n".join(lines)
