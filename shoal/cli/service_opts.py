"""Parsers for the values of ``svc create`` flags that are more than a plain string or number.

Published ports (short and long syntax), ``key=value`` labels, environment entries, placement
preferences and unit-bearing values. They are pure functions raising ``FlagError``, whose message
names the flag and the value the way docker's ``invalid argument "12Q" for "--limit-memory" flag``
does, so a bad value is reported in one line before anything is sent to the manager.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TypeVar

import click

from shoal import units
from shoal.proto import types_pb2

PortConfig = types_pb2.PortConfig
T = TypeVar("T")

_PROTOCOLS = {"tcp": PortConfig.TCP, "udp": PortConfig.UDP, "sctp": PortConfig.SCTP}
_PUBLISH_MODES = {"ingress": PortConfig.INGRESS, "host": PortConfig.HOST}
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


class FlagError(click.ClickException):
    """A flag value that cannot be used; exits 2 like click's usage errors."""

    exit_code = 2

    def __init__(self, flag: str, value: str, reason: str):
        super().__init__(f'invalid argument "{value}" for "{flag}" flag: {reason}')
        self.flag = flag
        self.value = value


def convert(flag: str, value: str, parse: Callable[[str], T]) -> T:
    """Run a units parser, turning its UnitError/ValueError into a FlagError for ``flag``."""
    try:
        return parse(value)
    except (units.UnitError, ValueError) as exc:
        raise FlagError(flag, value, str(exc)) from None


def parse_uint(flag: str, value: str) -> int:
    v = value.strip()
    if not v.isdigit():
        raise FlagError(flag, value, "expected a whole number >= 0")
    return int(v)


def parse_kv(flag: str, value: str) -> tuple[str, str]:
    """``"k=v"`` -> ("k", "v"); ``"k"`` -> ("k", "") as docker's label options do."""
    key, _, val = value.partition("=")
    if not key.strip():
        raise FlagError(flag, value, "expected KEY=VALUE")
    return key.strip(), val


def parse_env(value: str) -> str:
    """``"A=1"`` stays; a bare ``"A"`` takes A's value from this shell when set (docker's rule)."""
    if "=" in value:
        if value.startswith("="):
            raise FlagError("--env", value, "variable name is empty")
        return value
    if not value.strip():
        raise FlagError("--env", value, "variable name is empty")
    if value in os.environ:
        return f"{value}={os.environ[value]}"
    return value


def parse_placement_pref(value: str) -> types_pb2.PlacementPreference:
    """``"spread=node.labels.zone"`` -> PlacementPreference (spread is the only strategy)."""
    strategy, sep, arg = value.partition("=")
    if not sep or not arg:
        raise FlagError("--placement-pref", value, "expected spread=node.labels.<label>")
    if strategy.strip().lower() != "spread":
        raise FlagError("--placement-pref", value, f"unsupported placement preference {strategy} (only spread is supported)")
    return types_pb2.PlacementPreference(spread=arg.strip())


def _port_range(flag_value: str, text: str, what: str, allow_zero: bool) -> tuple[int, int]:
    m = _RANGE.fullmatch(text.strip())
    if not m:
        raise FlagError("--publish", flag_value, f"invalid {what} port {text!r}")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    low_limit = 0 if allow_zero else 1
    if not (low_limit <= lo <= 65535 and low_limit <= hi <= 65535) or hi < lo:
        raise FlagError("--publish", flag_value, f"invalid {what} port {text!r}: must be 1-65535")
    return lo, hi


def parse_port_short(value: str) -> list[types_pb2.PortConfig]:
    """``[published:]target[/proto]`` with optional ranges (``8080-8081:80-81/udp``)."""
    spec, _, proto = value.partition("/")
    proto = proto.lower() or "tcp"
    if proto not in _PROTOCOLS:
        raise FlagError("--publish", value, f"invalid protocol {proto!r} (tcp, udp or sctp)")
    parts = spec.split(":")
    if len(parts) > 2:
        raise FlagError("--publish", value, "a host IP is not supported in published ports; use [published:]target")
    t_lo, t_hi = _port_range(value, parts[-1], "target", allow_zero=False)
    if len(parts) == 2 and parts[0]:
        p_lo, p_hi = _port_range(value, parts[0], "published", allow_zero=False)
        if p_hi - p_lo != t_hi - t_lo:
            raise FlagError("--publish", value, "published and target port ranges must have the same size")
    else:
        p_lo = p_hi = 0
    out = []
    for i in range(t_hi - t_lo + 1):
        published = p_lo + i if p_lo else 0
        out.append(PortConfig(target_port=t_lo + i, published_port=published, protocol=_PROTOCOLS[proto]))
    return out


def parse_port_long(value: str) -> types_pb2.PortConfig:
    """``published=8080,target=80,protocol=udp,mode=host`` (docker's long syntax)."""
    port = PortConfig()
    have_target = False
    for field in value.split(","):
        key, sep, val = field.partition("=")
        key, val = key.strip().lower(), val.strip()
        if not sep:
            raise FlagError("--publish", value, f"invalid field {field!r}: must be a key=value pair")
        if key == "target":
            port.target_port = _port_range(value, val, "target", allow_zero=False)[0]
            have_target = True
        elif key == "published":
            port.published_port = _port_range(value, val, "published", allow_zero=True)[0]
        elif key == "protocol":
            if val.lower() not in _PROTOCOLS:
                raise FlagError("--publish", value, f"invalid protocol {val!r} (tcp, udp or sctp)")
            port.protocol = _PROTOCOLS[val.lower()]
        elif key == "mode":
            if val.lower() not in _PUBLISH_MODES:
                raise FlagError("--publish", value, f"invalid publish mode {val!r} (ingress or host)")
            port.publish_mode = _PUBLISH_MODES[val.lower()]
        elif key == "name":
            port.name = val
        else:
            raise FlagError("--publish", value, f"invalid field key {key!r}")
    if not have_target:
        raise FlagError("--publish", value, 'missing mandatory field "target"')
    return port


def parse_port(value: str) -> list[types_pb2.PortConfig]:
    """Either syntax; the long one is recognised by its ``=``."""
    if "=" in value:
        return [parse_port_long(value)]
    return parse_port_short(value)


def parse_network(value: str) -> types_pb2.NetworkAttachmentConfig:
    """``NAME`` or docker's long form ``name=NAME[,alias=A...]``."""
    if "=" not in value:
        if not value.strip():
            raise FlagError("--network", value, "a network name is needed")
        return types_pb2.NetworkAttachmentConfig(target=value.strip())
    att = types_pb2.NetworkAttachmentConfig()
    for field in value.split(","):
        key, sep, val = field.partition("=")
        key, val = key.strip().lower(), val.strip()
        if not sep or not val:
            raise FlagError("--network", value, f"invalid field {field!r}: must be a key=value pair")
        if key in ("name", "target"):
            att.target = val
        elif key == "alias":
            att.aliases.append(val)
        else:
            raise FlagError("--network", value, f"invalid field key {key!r} (name or alias)")
    if not att.target:
        raise FlagError("--network", value, 'missing mandatory field "name"')
    return att
