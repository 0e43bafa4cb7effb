"""Parsing and formatting of the sizes, durations and CPU counts users type on the command line.

Sizes follow docker's go-units ``RAMInBytes`` (binary multiples, case-insensitive, optional ``b``);
durations follow Go's ``time.ParseDuration`` as docker's flags do (``1m30s``, ``500ms``).
"""

from __future__ import annotations

import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?\s*$", re.IGNORECASE)
_SIZE_MULT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_DUR_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DUR_MULT = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


class UnitError(ValueError):
    """A size, duration or CPU value that cannot be parsed; the message names the bad text."""


def parse_bytes(text: str) -> int:
    """``"512m"`` -> 536870912. Raises UnitError on anything else."""
    m = _SIZE.fullmatch(str(text))
    if not m:
        raise UnitError(f"invalid size {text!r}: expected a number with an optional unit b, k, m, g, t or p")
    return int(float(m.group(1)) * _SIZE_MULT[m.group(2).lower()])


def format_bytes(n: int) -> str:
    """536870912 -> ``"512MiB"``; the inverse of parse_bytes for whole units."""
    for unit, mult in (("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= mult:
            v = n / mult
            return f"{v:.0f}{unit}" if v == int(v) else f"{v:.1f}{unit}"
    return f"{n}B"


def parse_duration(text: str) -> int:
    """``"1m30s"`` -> nanoseconds. A bare ``0`` is allowed, as in Go."""
    s = str(text).strip()
    if s == "0":
        return 0
    pos, total = 0, 0.0
    for m in _DUR_PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DUR_MULT[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise UnitError(f"invalid duration {text!r}: expected e.g. 10s, 1m30s, 500ms")
    return int(total)


def format_duration(ns: int) -> str:
    """Nanoseconds -> the shortest Go-style text (``90_000_000_000`` -> ``"1m30s"``)."""
    if ns == 0:
        return "0s"
    parts = []
    rest = ns
    for unit, mult in (("h", 3600 * 10**9), ("m", 60 * 10**9), ("s", 10**9), ("ms", 10**6), ("us", 10**3), ("ns", 1)):
        q, rest = divmod(rest, mult)
        if q:
            parts.append(f"{q}{unit}")
    return "".join(parts)


MAX_NANO_CPUS = (1 << 63) - 1  # an int64, as docker's NanoCPUs
_DECIMAL = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?")  # what most people type: 2, 0.5, .25, 1.


def parse_cpus(value: object) -> int:
    """A CPU count as nano CPUs, exactly as docker's ``ParseCPUs`` reads ``--cpus``/``--limit-cpu`` (a
    rational number): ``"1.5"`` or ``1.5`` -> 1_500_000_000, ``"3/2"`` too. UnitError names what is wrong:
    not a number, negative, finer than a nano CPU, beyond an int64. The one parser of CPU counts (``shoal
    run --cpus``, ``svc create --limit-cpu``, a stack file's ``cpus``)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UnitError(_cpus_error(value, "expected a number such as 0.5 or 2"))
    text = str(value).strip()
    m = _DECIMAL.fullmatch(text)
    if m and (m.group(2) or m.group(3)):
        digits = m.group(3) or ""
        num, den = int(m.group(2) + digits) * (-1 if m.group(1) == "-" else 1), 10 ** len(digits)
    else:  # exponents and fractions (1e-3, 3/2) as Go's big.Rat reads them; fractions costs ~3 ms to import
        from fractions import Fraction

        try:
            exact = Fraction(text)
        except (ValueError, ZeroDivisionError):
            raise UnitError(_cpus_error(value, "expected a number such as 0.5 or 2")) from None
        num, den = exact.numerator, exact.denominator
    if num < 0:
        raise UnitError(_cpus_error(value, "must not be negative"))
    nano, rest = divmod(num * 10**9, den)
    if rest:
        raise UnitError(_cpus_error(value, "too precise (at most 9 decimals)"))
    if nano > MAX_NANO_CPUS:
        raise UnitError(_cpus_error(value, "too large"))
    return nano


def _cpus_error(value: object, why: str) -> str:
    return f"invalid CPU count {value!r}: {why}"
