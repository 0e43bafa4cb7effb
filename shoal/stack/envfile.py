"""``.env`` and ``env_file`` files: ``KEY=VALUE`` lines, as the compose specification reads them.

One parser serves both the ``.env`` file beside the first stack file (variables for interpolation)
and a service's ``env_file:`` entries (variables for its containers). Lines may start with
``export``; values may be single-quoted (literal), double-quoted (``\\n``, ``\\t``, ``\\"`` and
``\\\\`` escapes) or bare (trimmed, with a `` #`` comment cut off). A line without ``=`` names a
variable taken from the environment, or is skipped when the environment does not have it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from shoal.stack.errors import Position, Problems

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


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
        if not _KEY.match(key):
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
