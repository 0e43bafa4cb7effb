"""The value grammars of compose files, read exactly as docker reads them.

Durations follow Go's ``time.ParseDuration`` (``1m30s``, ``1.5h``, ``500ms``, a bare ``0``); byte
sizes follow go-units ``RAMInBytes`` (binary multiples, case-insensitive, optional ``i``/``b``,
one optional space: ``512M``, ``1.5gb``, ``2 KiB``); CPU counts are shoal.units.parse_cpus' (the
CLI's flags read them too: exact, ``0.5`` -> 500,000,000 nano CPUs, too many decimals is an error, as
docker's ``ParseCPUs``). Each parser raises ValueError with the message shown to the user.

The short syntaxes of ports and volumes are read here too, into the long form the models validate:
``"8080:80/udp"`` becomes ``{target: 80, published: 8080, protocol: udp, mode: ingress}`` (a range
becomes one entry per port, as docker expands it) and ``"data:/var/lib/db:ro"`` becomes
``{type: volume, source: data, target: /var/lib/db, read_only: true}``.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

MAX_INT64 = (1 << 63) - 1
_GO_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")
_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kmgtp])?i?b?$", re.IGNORECASE)
PROTOCOLS = ("tcp", "udp", "sctp")
PROPAGATIONS = ("shared", "rshared", "slave", "rslave", "private", "rprivate")
VOLUME_MODES = ("ro", "rw", "nocopy", "z", "Z", "cached", "delegated", "consistent", *PROPAGATIONS)
_SIZE_MULT = {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_duration(value: Any) -> int:
    """Nanoseconds for a Go duration string (``"1m30s"`` -> 90e9); a bare number is refused except 0."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"invalid duration {value!r}: expected a string such as 10s, 1m30s or 500ms")
    s = str(value)
    text, neg = s, False
    if s[:1] in ("-", "+"):
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"invalid duration {text!r}: expected e.g. 10s, 1m30s, 500ms")
    total, pos = 0, 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        assert m is not None  # every part of the pattern is optional: it always matches
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        if not whole and not frac:
            raise ValueError(f"invalid duration {text!r}: expected e.g. 10s, 1m30s, 500ms")
        if not unit:
            raise ValueError(f"invalid duration {text!r}: missing unit (ns, us, ms, s, m or h)")
        if unit not in _GO_UNITS:
            raise ValueError(f"invalid duration {text!r}: unknown unit {unit!r} (ns, us, ms, s, m or h)")
        mult = _GO_UNITS[unit]
        total += int(whole or "0") * mult + (int(frac) * mult // 10 ** len(frac) if frac else 0)
        if total > MAX_INT64:
            raise ValueError(f"invalid duration {text!r}: too large")
        pos = m.end()
    return -total if neg else total


def format_duration(ns: int) -> str:
    """Go's ``Duration.String()``: ``90e9`` -> ``1m30s``, ``3600e9`` -> ``1h0m0s``, ``1.5e6`` -> ``1.5ms``."""
    if ns == 0:
        return "0s"
    sign, n = ("-", -ns) if ns < 0 else ("", ns)
    if n < 10**9:
        for unit, mult in (("ms", 10**6), ("µs", 10**3), ("ns", 1)):
            if n >= mult:
                return sign + _decimal(n, mult) + unit
    secs = _decimal(n % (60 * 10**9), 10**9) + "s"
    minutes, hours = n // (60 * 10**9) % 60, n // (3600 * 10**9)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}"
    if minutes:
        return f"{sign}{minutes}m{secs}"
    return sign + secs


def _decimal(n: int, mult: int) -> str:
    whole, frac = divmod(n, mult)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(mult)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def parse_bytes(value: Any) -> int:
    """Bytes for a size (``"512M"`` -> 536870912); an integer is a count of bytes."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r}: expected a number with an optional unit such as 512M or 1g")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid size {value}: must not be negative")
        return value
    m = _SIZE.fullmatch(str(value)) if isinstance(value, (str, float)) else None
    if not m or m.group(1).count(".") > 1:
        raise ValueError(f"invalid size {value!r}: expected a number with an optional unit b, k, m, g, t or p (e.g. 512M)")
    size = int(float(m.group(1)) * _SIZE_MULT[m.group(2).lower() if m.group(2) else None])
    if size > MAX_INT64:
        raise ValueError(f"invalid size {value!r}: too large")
    return size


def format_cpus(nano: int) -> str:
    """``500000000`` -> ``"0.5"``."""
    return _decimal(nano, 10**9)


def shell_words(value: Any) -> list[str] | None:
    """A command as a list: a string is split as a shell would (quotes respected), a list kept."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split command {value!r}: {exc}") from None
    if isinstance(value, list):
        return [scalar_text(v) for v in value]
    raise ValueError(f"expected a string or a list of strings, got {type(value).__name__}")


def scalar_text(value: Any) -> str:
    """A YAML scalar as the text docker would use (``true``, ``3``, ``1.5``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise ValueError(f"expected a string, number or boolean, got {'a mapping' if isinstance(value, dict) else 'a list'}")


def mapping(value: Any, *, bare: str | None = "") -> dict[str, str | None]:
    """A ``list_or_dict`` (``["A=1", "B"]`` or ``{A: 1, B: null}``) as a dict of text values.

    A list item without ``=`` maps to ``bare`` (``None`` for environment: take it from the shell).
    """
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): None if v is None else scalar_text(v) for k, v in value.items()}
    if isinstance(value, list):
        out: dict[str, str | None] = {}
        for item in value:
            text = scalar_text(item)
            key, sep, val = text.partition("=")
            if not key:
                raise ValueError(f"{text!r} has no name before '='")
            out[key] = val if sep else bare
        return out
    raise ValueError(f"expected a mapping or a list of KEY=VALUE strings, got {type(value).__name__}")


def string_list(value: Any) -> list[str]:
    """A string or a list of strings as a list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [scalar_text(v) for v in value]
    raise ValueError("expected a string or a list of strings")


def _port_range(text: str, what: str, spec: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    try:
        start, end = int(lo), int(hi) if sep else int(lo)
    except ValueError:
        raise ValueError(f"invalid port {spec!r}: {what} {text!r} is not a port number or range") from None
    if not (1 <= start <= 65535 and 1 <= end <= 65535):
        raise ValueError(f"invalid port {spec!r}: {what} {text!r} is not a port number (1-65535)")
    if end < start:
        raise ValueError(f"invalid port {spec!r}: {what} range {text!r} ends before it starts")
    return start, end


def _split_host(spec: str, rest: str) -> tuple[str, str, str]:
    """(host_ip, published, target) of ``[IP:][PUBLISHED:]TARGET``; IPv6 addresses in brackets."""
    ip = ""
    if rest.startswith("["):
        close = rest.find("]")
        if close < 0 or rest[close + 1 : close + 2] != ":":
            raise ValueError(f"invalid port {spec!r}: expected [IPv6]:PUBLISHED:TARGET")
        ip, rest = rest[1:close], rest[close + 2 :]
        published, sep, target = rest.partition(":")
        if not sep:
            raise ValueError(f"invalid port {spec!r}: expected [IPv6]:PUBLISHED:TARGET")
        return ip, published, target
    parts = rest.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    raise ValueError(f"invalid port {spec!r}: expected [HOST:]CONTAINER[/PROTOCOL]")


def parse_port(value: Any) -> list[dict[str, Any]]:
    """Long-form port entries for one short-syntax port (a number or ``[IP:][HOST:]CONTAINER[/PROTO]``)."""
    if isinstance(value, bool):
        raise ValueError(f"invalid port {value!r}: expected a number or a string such as '8080:80'")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"invalid port {value!r}: expected a number, a string such as '8080:80', or a mapping")
    rest, slash, proto = value.partition("/")
    if slash and proto.lower() not in PROTOCOLS:
        raise ValueError(f"invalid port {value!r}: unknown protocol {proto!r} (tcp, udp or sctp)")
    ip, published, target = _split_host(value, rest)
    t0, t1 = _port_range(target, "container port", value)
    out: list[dict[str, Any]] = []
    if published:
        p0, p1 = _port_range(published, "published port", value)
        if p1 - p0 != t1 - t0:
            raise ValueError(f"invalid port {value!r}: the published and container ranges differ in length")
    for i in range(t1 - t0 + 1):
        entry: dict[str, Any] = {"mode": "ingress", "target": t0 + i, "protocol": (proto or "tcp").lower()}
        if published:
            entry["published"] = p0 + i
        if ip:
            entry["host_ip"] = ip
        out.append(entry)
    return out


def _is_path(source: str) -> bool:
    return source.startswith(("/", ".", "~")) or (len(source) > 1 and source[1] == ":")


def parse_volume(value: Any) -> dict[str, Any]:
    """The long form of a short-syntax volume ``[SOURCE:]TARGET[:MODE]``."""
    if not isinstance(value, str):
        raise ValueError(f"invalid volume {value!r}: expected a string such as 'data:/var/lib/data' or a mapping")
    parts = value.split(":")
    if not value or len(parts) > 3 or not all(parts[:2]):
        raise ValueError(f"invalid volume {value!r}: expected [SOURCE:]TARGET[:MODE]")
    if len(parts) == 1:
        return {"type": "volume", "target": parts[0]}
    source, target = parts[0], parts[1]
    out: dict[str, Any] = {"type": "bind" if _is_path(source) else "volume", "source": source, "target": target}
    if len(parts) == 3:
        for mode in parts[2].split(","):
            if mode not in VOLUME_MODES:
                raise ValueError(f"invalid volume {value!r}: unknown mode {mode!r} ({', '.join(VOLUME_MODES)})")
            if mode == "ro":
                out["read_only"] = True
            elif mode == "nocopy":
                out["volume"] = {"nocopy": True}
            elif mode in PROPAGATIONS:
                out["bind"] = {**out.get("bind", {}), "propagation": mode}
            elif mode in ("z", "Z"):
                out["bind"] = {**out.get("bind", {}), "selinux": mode}
            elif mode != "rw":
                out["consistency"] = mode
    return out
