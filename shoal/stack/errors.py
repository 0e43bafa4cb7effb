"""Problems found in stack files, each with the file, line, column and key path a user can act on.

Every stage of loading (YAML parsing, interpolation, typed validation, cross-references) collects
``Problem`` values instead of stopping at the first one, so a user fixes a file in one pass. The
loader raises one ``StackError`` carrying all of them, sorted by position.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Path = tuple[Any, ...]
"""A key path into a compose document: ``("services", "web", "ports", 0)``."""


@dataclass(frozen=True, order=True)
class Position:
    """Where something is in a file; line and column count from 1, as editors show them."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a stack file: where, which key, and what."""

    position: Position | None
    path: Path
    message: str

    def __str__(self) -> str:
        where = f"{self.position}: " if self.position else ""
        key = f"{dotted(self.path)}: " if self.path else ""
        return f"{where}{key}{self.message}"

    def sort_key(self) -> tuple[str, int, int, str]:
        p = self.position
        return (p.file, p.line, p.column, self.message) if p else ("", 0, 0, self.message)


class StackError(Exception):
    """Raised once with every problem of a stack; ``str()`` is one problem per line."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = sorted(set(problems), key=Problem.sort_key)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class Problems:
    """A collector passed through the loading stages."""

    items: list[Problem] = field(default_factory=list)

    def add(self, position: Position | None, path: Path, message: str) -> None:
        self.items.append(Problem(position, tuple(path), message))

    def raise_if_any(self) -> None:
        if self.items:
            raise StackError(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)


def dotted(path: Sequence[Any]) -> str:
    """``("services", "web", "ports", 0)`` -> ``services.web.ports[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'replicas'?)`` when a close choice exists, else an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def describe(value: Any) -> str:
    """A short description of a YAML value for messages: ``a mapping``, ``'abc'``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return repr(text)
    return repr(value)
