"""Typed validation of one file's data, with pydantic's errors rewritten as stack problems.

pydantic reports a location like ``services.web.ports.0.0.target`` and a message like "Input should
be a valid integer". This module walks that location along the data the user wrote to find the key
path and the line and column, and rewords the message: unknown keys name the closest valid key,
type errors name what was found.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from shoal.stack.errors import Path, Problems, describe, did_you_mean
from shoal.stack.model_file import ComposeFile
from shoal.stack.yamlfile import Marks

_EXPECTED = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "dict": "a mapping",
    "model": "a mapping",
    "list": "a list",
}


def validate_file(data: Any, marks: Marks, problems: Problems) -> ComposeFile | None:
    """The typed file, or None with every problem added."""
    if not isinstance(data, dict):
        problems.add(marks.value(()), (), f"a compose file must be a mapping with a services: key, got {describe(data)}")
        return None
    try:
        return ComposeFile.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            _add(err, data, marks, problems)
        return None


def user_path(data: Any, loc: tuple[Any, ...]) -> Path:
    """The part of pydantic's ``loc`` that exists in ``data`` (the key path the user wrote).

    Other parts are a union member's tag, or a key or index made by a before-validator (a short
    syntax read into the long one): they are skipped.
    """
    path: list[Any] = []
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
            path.append(part)
    return tuple(path)


def _add(err: Mapping[str, Any], data: Any, marks: Marks, problems: Problems) -> None:
    kind = err["type"]
    loc = tuple(err["loc"])
    path = user_path(data, loc)
    if kind == "extra_forbidden":
        parent, key = path[:-1], path[-1] if path else loc[-1]
        problems.add(marks.key(path), parent, f"unknown key {key!r}{did_you_mean(str(key), _fields_at(data, parent))}")
        return
    if kind == "missing":
        problems.add(marks.key(path), path, f"missing required key {loc[-1]!r}")
        return
    problems.add(marks.value(path), path, _message(err))


def _message(err: Mapping[str, Any]) -> str:
    kind, msg, value = err["type"], err["msg"], err.get("input")
    if kind in ("value_error", "assertion_error"):
        return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{describe(value)} is not one of {expected.replace(' or ', ', ')}"
    base = kind.split("_")[0]
    if base in _EXPECTED and (kind.endswith("_type") or kind.endswith("_parsing") or kind.startswith("model_")):
        return f"expected {_EXPECTED[base]}, got {describe(value)}"
    if kind == "int_from_float":
        return f"expected a whole number, got {describe(value)}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"{describe(value)}: {msg[0].lower()}{msg[1:]}"
    return msg


def _fields_at(data: Any, parent: Path) -> list[str]:
    """The keys valid at ``parent`` (for "did you mean"), found by walking the model classes."""
    tp: Any = ComposeFile
    for part in parent:
        tp = _strip(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(part) if isinstance(part, str) else None
            tp = field.annotation if field else None
        else:
            args = get_args(tp)
            tp = args[-1] if args else None
        if tp is None:
            return []
    tp = _strip(tp)
    while get_origin(tp) is list:  # a port group: a list inside the list
        tp = _strip(get_args(tp)[0])
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _strip(tp: Any) -> Any:
    """``tp`` without its Annotated and Optional layers."""
    while True:
        if hasattr(tp, "__metadata__"):
            tp = tp.__origin__
        elif get_origin(tp) in (Union, UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            models = [a for a in members if isinstance(a, type) and issubclass(a, BaseModel)]
            tp = (models or members)[0]
        else:
            return tp
