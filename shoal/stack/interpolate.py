"""Variable substitution in compose values: ``$VAR``, ``${VAR}``, ``${VAR:-default}`` and friends.

The forms are the compose specification's: ``${VAR:-d}`` (unset or empty), ``${VAR-d}`` (unset),
``${VAR:?err}`` / ``${VAR?err}`` (required), ``${VAR:+x}`` / ``${VAR+x}`` (replacement when set) and
``$$`` for a literal dollar. Defaults may themselves contain ``${...}``. As docker does, only values
are substituted (never keys), only under services, networks, volumes, secrets and configs, and a
malformed reference is an error rather than text passed through.

Env files (the ``.env`` beside the first stack file, and a service's ``env_file:``) are read here
as well: ``KEY=VALUE`` lines, optionally after ``export``; values single-quoted (literal),
double-quoted (``\\n``, ``\\t``, ``\\"`` and ``\\\\`` escapes) or bare (trimmed, a `` #`` comment cut
off). A line without ``=`` names a variable taken from the environment, or is skipped without one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from shoal.stack.errors import Path, Position, Problems
from shoal.stack.yamlfile import Marks

SECTIONS = ("services", "networks", "volumes", "secrets", "configs")
_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_OPS = (":-", ":?", ":+", "-", "?", "+")

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}

Lookup = Callable[[str], str | None]


class TemplateError(ValueError):
    """A reference that cannot be substituted; the message is shown to the user."""


def substitute(text: str, lookup: Lookup) -> str:
    """``text`` with every variable reference replaced; raises TemplateError."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        nxt = text[j + 1 : j + 2]
        if nxt == "$":
            out.append("$")
            i = j + 2
        elif nxt == "{":
            end = _closing(text, j + 2)
            out.append(_braced(text[j + 2 : end], lookup, text))
            i = end + 1
        else:
            m = _NAME.match(text, j + 1)
            if not m:
                raise TemplateError(f"invalid interpolation format in {text!r}: use $$ for a literal $")
            out.append(lookup(m.group()) or "")
            i = m.end()
    return "".join(out)


def _closing(text: str, start: int) -> int:
    """Index of the ``}`` closing a ``${`` whose body starts at ``start`` (nested ``${}`` allowed)."""
    depth, i = 1, start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise TemplateError(f"invalid interpolation format in {text!r}: missing closing '}}'")


def _braced(body: str, lookup: Lookup, text: str) -> str:
    m = _NAME.match(body)
    if not m:
        raise TemplateError(f"invalid interpolation format in {text!r}: {'${' + body + '}'!r} is not a variable name")
    name, rest = m.group(), body[m.end() :]
    if not rest:
        return lookup(name) or ""
    op = next((o for o in _OPS if rest.startswith(o)), None)
    if op is None:
        raise TemplateError(f"invalid interpolation format in {text!r}: unexpected {rest!r} after {name}")
    arg = rest[len(op) :]
    value = lookup(name)
    is_set = value is not None and (value != "" or ":" not in op)
    if op.endswith("-"):
        return value if is_set else substitute(arg, lookup)  # type: ignore[return-value]  # is_set: not None
    if op.endswith("+"):
        return substitute(arg, lookup) if is_set else ""
    if not is_set:
        why = substitute(arg, lookup)
        raise TemplateError(f"required variable {name} is missing a value" + (f": {why}" if why else ""))
    return value  # type: ignore[return-value]  # is_set: not None


def interpolate(doc: dict[str, Any], env: Mapping[str, str], marks: Marks, problems: Problems) -> dict[str, Any]:
    """A copy of ``doc`` with every string value under the interpolated sections substituted."""
    out = dict(doc)
    lookup = env.get
    for section in SECTIONS:
        if section in out:
            out[section] = _walk(out[section], (section,), lookup, marks, problems)
    return out


def _walk(value: Any, path: Path, lookup: Lookup, marks: Marks, problems: Problems) -> Any:
    if isinstance(value, str):
        if "$" not in value:
            return value
        try:
            return substitute(value, lookup)
        except TemplateError as exc:
            problems.add(marks.value(path), path, str(exc))
            return value
    if isinstance(value, dict):
        return {k: _walk(v, (*path, k), lookup, marks, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, (*path, i), lookup, marks, problems) for i, v in enumerate(value)]
    return value


def parse_env_text(text: str, file: str, problems: Problems, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Variables defined by an env file's text; bad lines are added to ``problems``."""
    out: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export") :].strip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not _KEY.fullmatch(key):
            problems.add(Position(file, lineno, 1), (), f"invalid variable name {key!r} in env file")
            continue
        if not sep:
            if environ is not None and key in environ:
                out[key] = environ[key]
            continue
        try:
            out[key] = _value(value.strip())
        except ValueError as exc:
            problems.add(Position(file, lineno, len(raw) - len(raw.lstrip()) + len(key) + 2), (key,), str(exc))
    return out


def _value(v: str) -> str:
    if v[:1] == "'":
        if len(v) < 2 or not v.endswith("'"):
            raise ValueError("unterminated single-quoted value")
        return v[1:-1]
    if v[:1] == '"':
        end, chars = 1, []
        while end < len(v) and v[end] != '"':
            if v[end] == "\\" and end + 1 < len(v):
                chars.append(_ESCAPES.get(v[end + 1], "\\" + v[end + 1]))
                end += 2
                continue
            chars.append(v[end])
            end += 1
        if end >= len(v):
            raise ValueError("unterminated double-quoted value")
        return "".join(chars)
    cut = re.search(r"\s#", v)
    return (v[: cut.start()] if cut else v).strip()
