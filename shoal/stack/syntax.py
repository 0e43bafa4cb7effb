"""The short syntaxes of ports and volumes, turned into the long form the models validate.

``"8080:80/udp"`` becomes ``{target: 80, published: 8080, protocol: udp, mode: ingress}`` (a range
becomes one entry per port, as docker expands it) and ``"data:/var/lib/db:ro"`` becomes
``{type: volume, source: data, target: /var/lib/db, read_only: true}``. Each function raises
ValueError with the message a user sees.
"""

from __future__ import annotations

from typing import Any

PROTOCOLS = ("tcp", "udp", "sctp")
PROPAGATIONS = ("shared", "rshared", "slave", "rslave", "private", "rprivate")
VOLUME_MODES = ("ro", "rw", "nocopy", "z", "Z", "cached", "delegated", "consistent", *PROPAGATIONS)


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
