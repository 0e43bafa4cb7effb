"""Durations, byte sizes and CPU counts in stack files read as docker reads them (Go and go-units)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.stack.values import format_cpus, format_duration, parse_bytes, parse_duration
from shoal.units import parse_cpus

S = 10**9


@pytest.mark.parametrize(
    "text,ns",
    [
        ("10s", 10 * S), ("1m30s", 90 * S), ("1h5m30s20ms", 3930 * S + 20 * 10**6), ("500ms", 5 * 10**8),
        ("1.5h", 5400 * S), (".5s", S // 2), ("1.s", S), ("0", 0), ("-0", 0), ("+5s", 5 * S), ("-1s", -S),
        ("100us", 10**5), ("100µs", 10**5), ("100μs", 10**5), ("3ns", 3), ("1h0m0s", 3600 * S), ("0.000000001s", 1),
    ],
)  # fmt: skip
def test_go_durations(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "10", "1d", "s", ".s", "1x", "10s ", " 10s", "1.2.3s", "--1s", "9223372036854775808ns", True, None, 1.5])
def test_durations_go_refuses(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    "ns,text",
    [(0, "0s"), (90 * S, "1m30s"), (3600 * S, "1h0m0s"), (S + S // 2, "1.5s"), (1500, "1.5µs"), (2 * 10**6, "2ms"), (7, "7ns"), (-90 * S, "-1m30s")],
)
def test_format_duration_is_gos_string(ns, text):
    assert format_duration(ns) == text


@settings(deadline=None)  # a loaded machine must not turn a slow example into a failure
@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_duration_text_round_trips(ns):
    assert parse_duration(format_duration(ns)) == ns


@settings(deadline=None)  # a loaded machine must not turn a slow example into a failure
@given(st.lists(st.tuples(st.integers(0, 10**5), st.sampled_from(["h", "m", "s", "ms", "us", "ns"])), min_size=1, max_size=5))
def test_duration_sums_its_parts(parts):
    mult = {"h": 3600 * S, "m": 60 * S, "s": S, "ms": 10**6, "us": 10**3, "ns": 1}
    assert parse_duration("".join(f"{n}{u}" for n, u in parts)) == sum(n * mult[u] for n, u in parts)


@pytest.mark.parametrize(
    "text,size",
    [
        ("512M", 512 << 20), ("512m", 512 << 20), ("1g", 1 << 30), ("1GiB", 1 << 30), ("1Gi", 1 << 30), ("2kb", 2048),
        ("2 KiB", 2048), ("100", 100), ("100b", 100), ("1.5g", 3 << 29), ("0", 0), ("1t", 1 << 40), ("1p", 1 << 50),
        (4096, 4096),
    ],
)  # fmt: skip
def test_ram_in_bytes(text, size):
    assert parse_bytes(text) == size


@pytest.mark.parametrize("text", ["", "12Q", "m", "-1m", "1..2m", "1.2.3m", "12 parsecs", "1  m", "1e3", True, -5, "16777216p"])
def test_ram_in_bytes_refuses(text):
    with pytest.raises(ValueError, match="invalid size"):
        parse_bytes(text)


@settings(deadline=None)  # a loaded machine must not turn a slow example into a failure
@given(st.integers(0, 10**6), st.sampled_from(["", "k", "m", "g"]), st.sampled_from(["", "b", "ib", "B", "iB"]))
def test_sizes_are_binary_multiples(n, unit, suffix):
    text = f"{n}{unit.upper() if n % 2 else unit}{suffix if unit else suffix.lstrip('i')}"
    assert parse_bytes(text) == n * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[unit]


@pytest.mark.parametrize("text,nano", [("0.5", 5 * 10**8), (2, 2 * S), (1.5, 15 * 10**8), ("0.000000001", 1), ("0", 0)])
def test_cpus(text, nano):
    assert parse_cpus(text) == nano


@pytest.mark.parametrize("text", ["lots", "-1", "0.0000000001", True, None, "1/0"])
def test_cpus_refuses(text):
    with pytest.raises(ValueError, match="invalid CPU count"):
        parse_cpus(text)


@settings(deadline=None)  # a loaded machine must not turn a slow example into a failure
@given(st.integers(0, 10**12))
def test_cpus_round_trip(nano):
    assert parse_cpus(format_cpus(nano)) == nano
