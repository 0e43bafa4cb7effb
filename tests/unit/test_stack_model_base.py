"""The stack models' building blocks (shoal/stack/model_base.py): what a compose file may write for each
value type, what it is refused with, and how the value renders back for ``stack config``."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shoal.stack.model_base import (
    Bytes,
    Cpus,
    Duration,
    FileMode,
    Int,
    Model,
    NonNegInt,
    PortNumber,
    Ratio,
    lift_external_name,
)


class Sample(Model):
    count: Int | None = None
    replicas: NonNegInt | None = None
    port: PortNumber | None = None
    mode: FileMode | None = None
    interval: Duration | None = None
    memory: Bytes | None = None
    cpus: Cpus | None = None
    ratio: Ratio | None = None


def _error(**data: object) -> str:
    with pytest.raises(ValidationError) as exc:
        Sample.model_validate(data)
    return str(exc.value)


def test_extension_keys_are_dropped_and_other_unknown_keys_refused() -> None:
    assert Sample.model_validate({"x-note": "anything", "count": 2}).count == 2
    assert "extra_forbidden" in _error(cuont=2)


def test_a_boolean_is_not_a_number() -> None:
    assert "expected a whole number, got true" in _error(count=True)
    assert "expected a whole number, got false" in _error(replicas=False)
    assert "expected a whole number, got true" in _error(ratio=True)


def test_bounds_name_the_value() -> None:
    assert "must not be negative, got -1" in _error(replicas=-1)
    assert "70000 is not a port number (1-65535)" in _error(port=70000)
    assert "0 is not a port number" in _error(port=0)
    assert "must be between 0 and 1, got 1.5" in _error(ratio=1.5)
    assert Sample.model_validate({"port": 65535, "ratio": 1}).port == 65535


def test_file_modes_read_octal_text_and_render_with_a_leading_zero() -> None:
    s = Sample.model_validate({"mode": "0440"})
    assert s.mode == 0o440
    assert Sample.model_validate({"mode": "0o755"}).mode == 0o755
    assert Sample.model_validate({"mode": 0o600}).mode == 0o600
    assert s.model_dump(exclude_none=True) == {"mode": "0440"}
    assert "invalid file mode '0999'" in _error(mode="0999")
    assert "up to 07777" in _error(mode=0o17777)


def test_durations_sizes_and_cpus_are_stored_in_base_units_and_render_back() -> None:
    s = Sample.model_validate({"interval": "1m30s", "memory": "512M", "cpus": "0.5"})
    assert s.interval == 90 * 10**9
    assert s.memory == 512 * 1024**2
    assert s.cpus == 500_000_000
    out = s.model_dump(exclude_none=True)
    assert out["interval"] == "1m30s"
    assert out["cpus"] == "0.5"
    assert "must not be negative" in _error(interval="-5s")


def test_external_name_moves_to_name() -> None:
    assert lift_external_name({"external": {"name": "shared"}}) == {"external": True, "name": "shared"}
    assert lift_external_name({"external": {}}) == {"external": True}
    assert lift_external_name({"external": True, "name": "n"}) == {"external": True, "name": "n"}
    with pytest.raises(ValueError, match="external: unknown key 'nmae'"):
        lift_external_name({"external": {"nmae": "x"}})
    with pytest.raises(ValueError, match="external.name: expected a string"):
        lift_external_name({"external": {"name": 5}})
