"""The building blocks of the stack models: a strict base class and the annotated value types.

Every model forbids unknown keys (so typos are caught) but drops ``x-`` extension keys, which the
compose specification allows on any object. Durations are stored as nanoseconds, sizes as bytes
and CPU counts as nano CPUs; each renders back to text for ``stack config``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    model_validator,
)

from shoal import units
from shoal.stack import values
from shoal.stack.errors import describe, did_you_mean


class Model(BaseModel):
    """Base of every stack model: unknown keys are errors, ``x-*`` extension keys are ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=False)

    @model_validator(mode="before")
    @classmethod
    def _drop_extensions(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(isinstance(k, str) and k.startswith("x-") for k in data):
            return {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
        return data


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number, got {'true' if value else 'false'}")
    return value


def _non_negative(value: int) -> int:
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return value


def _ratio(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"must be between 0 and 1, got {value:g}")
    return value


def _port_number(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError(f"{value} is not a port number (1-65535)")
    return value


def _octal_mode(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip().lower().removeprefix("0o")
        try:
            return int(text, 8)
        except ValueError:
            raise ValueError(f"invalid file mode {value!r}: expected an octal number such as 0440") from None
    return _no_bool(value)


def _mode_range(value: int) -> int:
    if not 0 <= value <= 0o7777:
        raise ValueError(f"invalid file mode {value}: expected an octal number up to 07777, written with a leading 0 (e.g. 0440)")
    return value


Int = Annotated[int, BeforeValidator(_no_bool)]
NonNegInt = Annotated[int, BeforeValidator(_no_bool), AfterValidator(_non_negative)]
PortNumber = Annotated[int, BeforeValidator(_no_bool), AfterValidator(_port_number)]
FileMode = Annotated[int, BeforeValidator(_octal_mode), AfterValidator(_mode_range), PlainSerializer(lambda m: f"0{m:o}", return_type=str)]
Duration = Annotated[
    int, BeforeValidator(values.parse_duration), AfterValidator(_non_negative), PlainSerializer(values.format_duration, return_type=str)
]
Bytes = Annotated[int, BeforeValidator(values.parse_bytes)]
Cpus = Annotated[int, BeforeValidator(units.parse_cpus), PlainSerializer(values.format_cpus, return_type=str)]
Labels = Annotated[dict[str, str], BeforeValidator(lambda v: values.mapping(v, bare=""))]
Environment = Annotated[dict[str, str | None], BeforeValidator(lambda v: values.mapping(v, bare=None))]
Command = Annotated[list[str] | None, BeforeValidator(values.shell_words)]
StringList = Annotated[list[str], BeforeValidator(values.string_list)]
Ratio = Annotated[float, BeforeValidator(_no_bool), AfterValidator(_ratio)]


def external_flag(value: Any) -> Any:
    """``external: true`` or ``external: {name: x}`` -> ``True`` (the name moves to ``name``)."""
    return True if isinstance(value, dict) else value


def lift_external_name(data: Any) -> Any:
    """Move ``external.name`` to ``name`` (docker's deprecated form) before validation."""
    if isinstance(data, dict) and isinstance(data.get("external"), dict):
        ext = data["external"]
        for key in ext:
            if key != "name":
                raise ValueError(f"external: unknown key {key!r}{did_you_mean(str(key), ['name'])}")
        if ext.get("name") is not None and not isinstance(ext["name"], str):
            raise ValueError(f"external.name: expected a string, got {describe(ext['name'])}")
        out = {k: v for k, v in data.items() if k != "external"}
        out["external"] = True
        if ext.get("name"):
            out["name"] = ext["name"]
        return out
    return data
