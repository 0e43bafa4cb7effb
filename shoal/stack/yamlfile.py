"""Reading one compose file: YAML 1.2 into plain Python data plus the position of every key and value.

The file is composed into ruamel.yaml's node graph (through its C parser, ruamel.yaml.clib, when it
is installed: the round-trip loader took over a second for a 20-service file) and built into plain
``dict``/``list``/``str``/``int``/``float``/``bool``/``None`` data here, recording the line and column
of every key, value and list item so later stages can point at what a user typed. YAML 1.2's
core schema decides the types (``22:22`` stays a string, ``yes`` is not a boolean); ``0440`` with a
leading zero is octal, as docker's YAML reads it. Duplicate keys are errors, every one with its
path; merge keys (``<<: *defaults``) work as in YAML 1.1, keys written in the mapping winning.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML, nodes
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.tag import Tag

from shoal.stack.errors import Path, Position, Problems

MAX_DEPTH = 64
_TAG = "tag:yaml.org,2002:"


@dataclass
class Marks:
    """Positions of keys and values in the files a stack was read from, by key path."""

    keys: dict[Path, Position] = field(default_factory=dict)
    values: dict[Path, Position] = field(default_factory=dict)

    def value(self, path: Path) -> Position | None:
        """Where the value at ``path`` is, or the nearest enclosing one that is known."""
        for n in range(len(path), -1, -1):
            pos = self.values.get(path[:n]) or self.keys.get(path[:n])
            if pos:
                return pos
        return None

    def key(self, path: Path) -> Position | None:
        """Where the key ending ``path`` was typed (falls back to its value, then its parents)."""
        return self.keys.get(tuple(path)) or self.value(path)

    def update(self, other: Marks) -> None:
        self.keys.update(other.keys)
        self.values.update(other.values)


def _int(text: str) -> int:
    """A YAML integer; ``0440`` (leading zero, octal digits) is octal, as docker's YAML reads it."""
    t = text.replace("_", "")
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("+-").lower()
    if t.startswith("0o"):
        return sign * int(t[2:], 8)
    if t.startswith("0x"):
        return sign * int(t[2:], 16)
    if t.startswith("0b"):
        return sign * int(t[2:], 2)
    if len(t) > 1 and t.startswith("0") and set(t) <= set("01234567"):
        return sign * int(t, 8)
    return sign * int(t)


def _float(text: str) -> float:
    t = text.replace("_", "").lower()
    if t.lstrip("+-") in (".inf", "inf"):
        return float("-inf") if t.startswith("-") else float("inf")
    if t in (".nan", "nan"):
        return float("nan")
    return float(t)


_SCALARS: dict[str, Callable[[str], Any]] = {
    _TAG + "str": str,
    _TAG + "int": _int,
    _TAG + "float": _float,
    _TAG + "bool": lambda t: t.lower() == "true",
    _TAG + "null": lambda t: None,
}


_TAGS = {name: Tag(suffix=_TAG + name) for name in ("str", "int", "float", "bool", "null", "merge", "seq", "map")}
_CORE = re.compile(  # YAML 1.2's core schema: every plain scalar that is not a string
    r"(?P<null>(?:~|null|Null|NULL)$)"
    r"|(?P<bool>(?:true|True|TRUE|false|False|FALSE)$)"
    r"|(?P<int>(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$)"
    r"|(?P<float>(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$)"
    r"|(?P<merge><<$)"
)
_MAYBE_NOT_STR = frozenset("~nNtTfF0123456789+-.<")


class CoreResolver(VersionedResolver):
    """YAML 1.2's core schema, without ruamel's per-scalar version lookup (the slowest part of a load)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is nodes.ScalarNode:
            if implicit[0]:
                if not value:
                    return _TAGS["null"]
                if value[0] in _MAYBE_NOT_STR:
                    m = _CORE.match(value)
                    if m:
                        return _TAGS[m.lastgroup]  # type: ignore[index]  # one group always matched
            return _TAGS["str"]
        return _TAGS["seq"] if kind is nodes.SequenceNode else _TAGS["map"]


@dataclass
class _Builder:
    file: str
    problems: Problems
    marks: Marks = field(default_factory=Marks)

    def pos(self, node: Any) -> Position:
        m = node.start_mark
        return Position(self.file, m.line + 1, m.column + 1)

    def build(self, node: Any, path: Path, parents: tuple[int, ...] = ()) -> Any:
        """Plain data for ``node``; ``parents`` are the node ids above it (an alias may loop)."""
        if isinstance(node, nodes.ScalarNode):
            return self._scalar(node, path)
        if id(node) in parents:
            self.problems.add(self.pos(node), path, "an alias refers to a mapping or list that contains it")
            return None
        if len(parents) >= MAX_DEPTH:
            self.problems.add(self.pos(node), path, f"nested more than {MAX_DEPTH} levels deep")
            return None
        parents = (*parents, id(node))
        if isinstance(node, nodes.SequenceNode):
            out = []
            for i, item in enumerate(node.value):
                self.marks.values[(*path, i)] = self.pos(item)
                out.append(self.build(item, (*path, i), parents))
            return out
        if isinstance(node, nodes.MappingNode):
            return self._mapping(node, path, parents)
        self.problems.add(self.pos(node), path, "unsupported YAML node")
        return None

    def _scalar(self, node: nodes.ScalarNode, path: Path) -> Any:
        if node.ctag is _TAGS["str"]:
            return node.value
        tag = str(node.ctag)
        make = _SCALARS.get(tag)
        if make is None:
            self.problems.add(self.pos(node), path, f"unsupported YAML value ({tag}): use a string, number, list or mapping")
            return None
        try:
            return make(node.value)
        except ValueError:
            self.problems.add(self.pos(node), path, f"{node.value!r} is not a valid {tag.rsplit(':', 1)[-1]}")
            return None

    def _mapping(self, node: nodes.MappingNode, path: Path, parents: tuple[int, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first: dict[str, Any] = {}
        merged: list[Any] = []
        for knode, vnode in node.value:
            if knode.ctag is _TAGS["merge"]:
                merged.append(vnode)
                continue
            if not isinstance(knode, nodes.ScalarNode):
                kind = "list" if isinstance(knode, nodes.SequenceNode) else "mapping"
                self.problems.add(self.pos(knode), path, f"a key must be a string, not a {kind}")
                continue
            key = self.build(knode, path, parents)
            if not isinstance(key, str):
                self.problems.add(self.pos(knode), path, f"key {knode.value!r} must be a string (quote it)")
                continue
            if key in first:
                line = first[key].start_mark.line + 1
                self.problems.add(self.pos(knode), path, f"duplicate key {key!r} (first defined at line {line})")
                continue
            first[key] = knode
            self.marks.keys[(*path, key)] = self.pos(knode)
            self.marks.values[(*path, key)] = self.pos(vnode)
            out[key] = self.build(vnode, (*path, key), parents)
        for source in merged:
            self._merge(out, source, path, parents)
        return out

    def _merge(self, out: dict[str, Any], source: Any, path: Path, parents: tuple[int, ...]) -> None:
        """``<<: *anchor`` or ``<<: [*a, *b]``: add the keys ``out`` does not have yet."""
        sources = source.value if isinstance(source, nodes.SequenceNode) else [source]
        for src in sources:
            data = self.build(src, path, parents) if isinstance(src, nodes.MappingNode) else None
            if not isinstance(data, dict):
                self.problems.add(self.pos(src), path, "a merge key (<<) needs a mapping or a list of mappings")
                continue
            for k, v in data.items():
                out.setdefault(k, v)


def _compose(text: str, pure: bool) -> Any:
    yaml = YAML(typ="safe", pure=pure)
    yaml.Resolver = CoreResolver
    return yaml.compose(text)


def parse(text: str, file: str, problems: Problems) -> tuple[Any, Marks]:
    """The plain data of one YAML document and its marks; problems are added, never raised.

    The C parser (libyaml) refuses some YAML 1.2 that the pure-Python parser reads (``[8080:80]``
    in a flow list): when it fails, the text is parsed again in pure Python, whose result (or
    message) is the one used, so the outcome does not depend on whether ruamel.yaml.clib is there.
    """
    builder = _Builder(file, problems)
    try:
        try:
            root = _compose(text, pure=False)
        except (YAMLError, ValueError):
            root = _compose(text, pure=True)
    except MarkedYAMLError as exc:
        at_end = "<stream end>" in (exc.problem or "")  # unclosed: point at what was left open
        mark = (exc.context_mark if at_end else None) or exc.problem_mark or exc.context_mark
        pos = Position(file, mark.line + 1, mark.column + 1) if mark else Position(file, 1, 1)
        what = ": ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        problems.add(pos, (), f"invalid YAML: {what}")
        return None, builder.marks
    except (YAMLError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        problems.add(Position(file, 1, 1), (), f"invalid YAML: {exc}")
        return None, builder.marks
    builder.marks.values[()] = Position(file, 1, 1)
    if root is None:
        return None, builder.marks
    return builder.build(root, ()), builder.marks
