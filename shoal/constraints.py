"""Placement constraints (``node.labels.zone==east``): parsing and matching against a node.

Constraints are parsed once per service and matched per node; the text of a failed constraint is
what the scheduler's explanation shows ("2 fail node.labels.zone==east").
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from shoal.proto import types_pb2 as pb

_EXPR = re.compile(r"^\s*([a-zA-Z0-9_.\-/]+)\s*(==|!=)\s*(.*?)\s*$")
_FIXED = ("node.id", "node.hostname", "node.role", "node.ip", "node.platform.os", "node.platform.arch")
_PREFIXES = ("node.labels.", "engine.labels.")


class ConstraintError(ValueError):
    """A constraint that does not parse; the message quotes it."""


@dataclass(frozen=True)
class Constraint:
    key: str
    op: str  # "==" or "!="
    value: str

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value}"

    def matches(self, node: pb.Node) -> bool:
        actual = node_value(node, self.key)
        if self.key == "node.ip":
            hit = _ip_match(actual, self.value)
        elif self.key in ("node.role", "node.platform.os", "node.platform.arch"):
            hit = actual is not None and actual.lower() == self.value.lower()
        else:
            hit = actual is not None and actual == self.value
        return hit if self.op == "==" else not hit


def _ip_match(actual: str | None, want: str) -> bool:
    if not actual:
        return False
    try:
        addr = ipaddress.ip_address(actual.split(":")[0] if actual.count(":") == 1 else actual)
        return addr in ipaddress.ip_network(want, strict=False)
    except ValueError:
        return False


def node_value(node: pb.Node, key: str) -> str | None:
    """The node attribute a constraint or preference names; None when the node has no such label."""
    d = node.description
    if key == "node.id":
        return node.id
    if key == "node.hostname":
        return d.hostname
    if key == "node.role":
        return "manager" if node.spec.role == pb.NodeSpec.MANAGER else "worker"
    if key == "node.ip":
        return d.addr.rsplit(":", 1)[0] if d.addr else None
    if key == "node.platform.os":
        return d.platform_os
    if key == "node.platform.arch":
        return d.platform_arch
    if key.startswith("node.labels."):
        return node.spec.labels.get(key[len("node.labels.") :])
    if key.startswith("engine.labels."):
        return d.engine_labels.get(key[len("engine.labels.") :])
    return None


def parse_constraint(text: str) -> Constraint:
    m = _EXPR.fullmatch(text)
    if not m:
        raise ConstraintError(f"{text!r}: expected KEY==VALUE or KEY!=VALUE")
    k, op, v = m.groups()
    if not (k in _FIXED or (k.startswith(_PREFIXES) and len(k) > len("node.labels."))):
        raise ConstraintError(f"{text!r}: unknown key {k!r} (node.id, node.hostname, node.role, node.ip, node.platform.os, node.platform.arch, node.labels.X, engine.labels.X)")
    if not v:
        raise ConstraintError(f"{text!r}: missing value")
    if k == "node.role" and v.lower() not in ("manager", "worker"):
        raise ConstraintError(f"{text!r}: node.role is manager or worker")
    if k == "node.ip":
        try:
            ipaddress.ip_network(v, strict=False)
        except ValueError:
            raise ConstraintError(f"{text!r}: {v!r} is not an address or CIDR") from None
    return Constraint(k, op, v)


def parse_constraints(texts: list[str]) -> list[Constraint]:
    return [parse_constraint(t) for t in texts]
