"""Published ports of a standalone container (``shoal run -p``): docker's flag syntax and the checked form.

``parse`` reads one ``-p``/``--publish`` value the way docker does: ``HOST:CONTAINER``,
``IP:HOST:CONTAINER``, each optionally ending in ``/tcp`` or ``/udp``, and port ranges of equal length
(``8080-8081:80-81``). ``validate`` turns a config's list into the normalized entries the launcher
keeps (``{"host_ip", "host_port", "container_port", "protocol"}``), refusing a bad port, protocol or
address, and a host port given twice. Pure; the launcher wires them (launcher/hostnet.py).
"""

from __future__ import annotations

from typing import Any

from shoal.runtime.errors import ConfigError

PROTOCOLS = ("tcp", "udp")
FIELDS = ("host_ip", "host_port", "container_port", "protocol")


def _range(text: str, what: str, flag: str) -> list[int]:
    lo_text, dash, hi_text = text.partition("-")
    try:
        lo = int(lo_text)
        hi = int(hi_text) if dash else lo
    except ValueError:
        raise ConfigError(f"invalid publish {flag!r}: {what} port {text!r} is not a number") from None
    if not (1 <= lo <= 65535 and 1 <= hi <= 65535) or hi < lo:
        raise ConfigError(f"invalid publish {flag!r}: {what} port {text!r} must be 1-65535")
    return list(range(lo, hi + 1))


def parse(flag: str) -> list[dict[str, Any]]:
    """One ``-p`` value as port entries (one per port of a range)."""
    spec, slash, proto = flag.partition("/")
    proto = proto.lower() if slash else "tcp"
    if proto not in PROTOCOLS:
        raise ConfigError(f"invalid publish {flag!r}: protocol {proto!r} is not tcp or udp")
    host_ip, host_text, container_text = "", "", ""
    parts = spec.rsplit(":", 2)
    if len(parts) == 3:
        host_ip, host_text, container_text = parts
    elif len(parts) == 2:
        host_text, container_text = parts
    else:
        raise ConfigError(f"invalid publish {flag!r}: a host port is required (HOST:CONTAINER, as in 8080:80)")
    if not host_text:
        raise ConfigError(f"invalid publish {flag!r}: a host port is required (HOST:CONTAINER, as in 8080:80)")
    hosts = _range(host_text, "host", flag)
    targets = _range(container_text, "container", flag)
    if len(hosts) != len(targets):
        raise ConfigError(f"invalid publish {flag!r}: the host and container ranges differ in length")
    return [{"host_ip": host_ip, "host_port": h, "container_port": c, "protocol": proto}
            for h, c in zip(hosts, targets, strict=True)]


def validate(given: object) -> list[dict[str, Any]]:
    """The normalized entries of a config's ``publish`` list (ConfigError naming the bad one)."""
    if not isinstance(given, list):
        raise ConfigError("publish must be a list of port entries")
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for entry in given:
        if not isinstance(entry, dict) or set(entry) - set(FIELDS):
            raise ConfigError(f"publish: {entry!r} is not a port entry ({', '.join(FIELDS)})")
        host_ip = entry.get("host_ip") or ""
        proto = entry.get("protocol") or "tcp"
        ports = (entry.get("host_port"), entry.get("container_port"))
        if not all(isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535 for p in ports):
            raise ConfigError(f"publish: ports of {entry!r} must be 1-65535")
        if proto not in PROTOCOLS:
            raise ConfigError(f"publish: protocol {proto!r} is not tcp or udp")
        if host_ip:
            import ipaddress  # only for -p IP:...: `shoal run` without it does not load it

            try:
                host_ip = str(ipaddress.IPv4Address(host_ip))
            except ValueError:
                raise ConfigError(f"publish: {host_ip!r} is not an IPv4 address of this host") from None
            if host_ip == "0.0.0.0":
                host_ip = ""
        key = (proto, entry["host_port"])
        if key in seen:
            raise ConfigError(f"publish: host port {entry['host_port']}/{proto} is given twice")
        seen.add(key)
        out.append({"host_ip": host_ip, "host_port": entry["host_port"], "container_port": entry["container_port"],
                    "protocol": proto})
    return out


def describe(entry: dict[str, Any]) -> str:
    """docker's ``0.0.0.0:8080->80/tcp``."""
    return f"{entry['host_ip'] or '0.0.0.0'}:{entry['host_port']}->{entry['container_port']}/{entry['protocol']}"
