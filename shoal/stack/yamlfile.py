"""Reading one compose file: YAML 1.2 into plain Python data plus the position of every key and value.

ruamel.yaml in round-trip mode keeps line and column for each key, value and list item, so every
later stage can point at the exact place a user typed something wrong. YAML 1.2 means ``22:22`` stays
a string and ``yes`` is not a boolean; duplicate keys are errors (all of them, each with its path).
The result is plain ``dict``/``list``/``str``/``int``/``float``/``bool``/``None`` data.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML, nodes
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from shoal.stack.errors import Path, Position, Problems

MAX_DEPTH = 64


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


@dataclass
class _Reader:
    file: str
    problems: Problems
    marks: Marks = field(default_factory=Marks)

    def pos(self, line: int, col: int) -> Position:
        return Position(self.file, line + 1, col + 1)

    def plain(self, node: Any, path: Path) -> Any:
        """Plain data for a ruamel round-trip node, recording positions under ``path``.

        (ruamel already turns an alias to an enclosing node into null, so there is no cycle.)
        """
        if isinstance(node, (CommentedMap, CommentedSeq)):
            if len(path) >= MAX_DEPTH:
                self.problems.add(self.marks.value(path), path, f"nested more than {MAX_DEPTH} levels deep")
                return None
            if isinstance(node, CommentedMap):
                return self._mapping(node, path)
            return self._sequence(node, path)
        return self._scalar(node, path)

    def _mapping(self, node: CommentedMap, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        data = node.lc.data
        for k, v in node.items():
            where = data.get(k)
            if where:
                self.marks.keys[(*path, str(k))] = self.pos(where[0], where[1])
                self.marks.values[(*path, str(k))] = self.pos(where[2], where[3])
            if not isinstance(k, str):
                self.problems.add(self.marks.value((*path, str(k))), path, f"key {k!r} must be a string (quote it)")
                continue
            out[k] = self.plain(v, (*path, k))
        return out

    def _sequence(self, node: CommentedSeq, path: Path) -> list[Any]:
        out = []
        data = node.lc.data
        for i, v in enumerate(node):
            where = data.get(i)
            if where:
                self.marks.values[(*path, i)] = self.pos(where[0], where[1])
            out.append(self.plain(v, (*path, i)))
        return out

    def _scalar(self, node: Any, path: Path) -> Any:
        if node is None or isinstance(node, bool):
            return node
        if isinstance(node, int):
            return _int(node)
        if isinstance(node, float):
            return float(node)
        if isinstance(node, str):
            return str(node)
        if isinstance(node, (datetime.date, datetime.datetime)):
            return node.isoformat()
        tag = getattr(getattr(node, "tag", None), "value", None) or type(node).__name__
        self.problems.add(self.marks.value(path), path, f"unsupported YAML value ({tag}): use a string, number, list or mapping")
        return None


def _int(node: int) -> int:
    """An integer; ``0440`` (leading zero, octal digits) is octal, as docker's YAML reads it."""
    width = getattr(node, "_width", None)
    digits = str(int(node))
    if width and width > len(digits) and int(node) > 0 and set(digits) <= set("01234567"):
        return int(digits, 8)
    return int(node)


def _yaml() -> YAML:
    return YAML(typ="rt")  # YAML 1.2 unless a document asks for 1.1 with a %YAML directive


def parse(text: str, file: str, problems: Problems) -> tuple[Any, Marks]:
    """The plain data of one YAML document and its marks; problems are added, never raised."""
    reader = _Reader(file, problems)
    try:
        doc = _yaml().load(text)
    except DuplicateKeyError:
        _duplicates(text, reader)
        return None, reader.marks
    except MarkedYAMLError as exc:
        at_end = "<stream end>" in (exc.problem or "")  # unclosed: point at what was left open
        mark = (exc.context_mark if at_end else None) or exc.problem_mark or exc.context_mark
        pos = reader.pos(mark.line, mark.column) if mark else None
        what = ": ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        problems.add(pos, (), f"invalid YAML: {what}")
        return None, reader.marks
    except (YAMLError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        problems.add(Position(file, 1, 1), (), f"invalid YAML: {exc}")
        return None, reader.marks
    reader.marks.values[()] = Position(file, 1, 1)
    try:
        return reader.plain(doc, ()), reader.marks
    except RecursionError:
        problems.add(Position(file, 1, 1), (), "the document is nested too deeply")
        return None, reader.marks


def _duplicates(text: str, reader: _Reader) -> None:
    """Report every duplicate key with its path (ruamel stops at the first)."""
    root = YAML(typ="rt").compose(text)
    stack: list[tuple[Any, Path]] = [(root, ())]
    visited: set[int] = set()
    while stack:
        node, path = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, nodes.MappingNode):
            first: dict[Any, Any] = {}
            for knode, vnode in node.value:
                k = knode.value if isinstance(knode, nodes.ScalarNode) else id(knode)
                if k in first and k != "<<":
                    pos = reader.pos(knode.start_mark.line, knode.start_mark.column)
                    line = first[k].start_mark.line + 1
                    reader.problems.add(pos, path, f"duplicate key {k!r} (first defined at line {line})")
                    continue
                first[k] = knode
                stack.append((vnode, (*path, str(k))))
        elif isinstance(node, nodes.SequenceNode):
            stack.extend((v, (*path, i)) for i, v in enumerate(node.value))
