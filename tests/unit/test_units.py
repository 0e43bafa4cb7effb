"""Sizes, durations and CPU counts parse as docker's flags do."""

import re
import subprocess
import sys
from fractions import Fraction

import pytest
from hypothesis import given, settings
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


@pytest.mark.parametrize("text,nano", [
    (" 0.5 ", 5 * 10**8), (".25", 25 * 10**7), ("1.", 10**9), ("+1", 10**9), ("-0", 0), ("1.5000000000", 15 * 10**8),
    ("1e-3", 10**6), ("3/2", 15 * 10**8), ("9223372036.854775807", 2**63 - 1), (1.5, 15 * 10**8), (0.1, 10**8),
])
def test_cpu_counts_read_as_docker_reads_them_exactly(text, nano):
    assert parse_cpus(text) == nano


@pytest.mark.parametrize("text,why", [
    ("nan", "expected a number"), ("inf", "expected a number"), ("", "expected a number"), (".", "expected a number"),
    ("1/0", "expected a number"), (None, "expected a number"), (True, "expected a number"), ("-0.5", "must not be negative"),
    ("0.0000000001", "too precise"), (1e-10, "too precise"), ("9223372036.854775808", "too large"), ("1e400", "too large"),
])
def test_a_bad_cpu_count_names_what_is_wrong(text, why):
    """One message for every caller (run --cpus, svc create --limit-cpu, a stack's cpus): the value and why.
    nan and inf were a traceback under ``run --cpus``, and 1e-10 silently no limit at all."""
    with pytest.raises(UnitError, match=f"^invalid CPU count {re.escape(repr(text))}: {why}"):
        parse_cpus(text)


@settings(deadline=None)
@given(st.from_regex(r"[+-]?[0-9]{0,12}(\.[0-9]{0,12})?", fullmatch=True))
def test_plain_decimals_read_as_the_rational_parser_reads_them(text):
    """Plain decimals are read without importing fractions (~3 ms on `shoal run --cpus`): as Fraction reads them."""
    try:
        exact = Fraction(text)
    except ValueError:
        with pytest.raises(UnitError, match="expected a number"):
            parse_cpus(text)
        return
    nano = exact * 10**9
    if exact < 0 or nano.denominator != 1 or nano > 2**63 - 1:
        with pytest.raises(UnitError):
            parse_cpus(text)
    else:
        assert parse_cpus(text) == nano


def test_a_plain_cpu_count_does_not_load_fractions():
    code = "import sys\nfrom shoal.units import parse_cpus\nparse_cpus('1.5')\nprint('fractions' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"
