"""Sizes, durations and CPU counts parse as docker's flags do."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.units import UnitError, format_bytes, format_duration, parse_bytes, parse_cpus, parse_duration


@pytest.mark.parametrize(
    "text,expected",
    [("512m", 512 << 20), ("512M", 512 << 20), ("1g", 1 << 30), ("1GiB", 1 << 30), ("2kb", 2048), ("100", 100), ("1.5g", 3 << 29), ("10b", 10)],
)
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["12Q", "", "m", "-1m", "1..2m", "12 potatoes"])
def test_parse_bytes_refuses(text):
    with pytest.raises(UnitError, match="invalid size"):
        parse_bytes(text)


@pytest.mark.parametrize("text,ns", [("10s", 10**10), ("1m30s", 90 * 10**9), ("500ms", 5 * 10**8), ("0", 0), ("1h", 3600 * 10**9), ("1.5s", 15 * 10**8)])
def test_parse_duration(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["10", "s", "1x", "", "10s garbage"])
def test_parse_duration_refuses(text):
    with pytest.raises(UnitError, match="invalid duration"):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**15))
def test_duration_round_trip(ns):
    assert parse_duration(format_duration(ns)) == ns


def test_format_bytes():
    assert format_bytes(512 << 20) == "512MiB"
    assert format_bytes(100) == "100B"
    assert parse_bytes(format_bytes(3 << 30)) == 3 << 30


def test_parse_cpus():
    assert parse_cpus("1.5") == 1_500_000_000
    with pytest.raises(UnitError):
        parse_cpus("lots")
    with pytest.raises(UnitError):
        parse_cpus("-1")
