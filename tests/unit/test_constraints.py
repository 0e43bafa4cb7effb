"""Placement constraints: what parses, what a typo says, and which nodes each expression matches."""

from __future__ import annotations

import pytest

from shoal.constraints import Constraint, ConstraintError, node_value, parse_constraint, parse_constraints
from shoal.proto import types_pb2 as pb


def node(
    nid: str = "n1",
    hostname: str = "host-a",
    role: int = pb.NodeSpec.WORKER,
    addr: str = "10.0.0.5:4242",
    labels: dict[str, str] | None = None,
    engine: dict[str, str] | None = None,
) -> pb.Node:
    n = pb.Node(id=nid)
    n.spec.role = role
    n.spec.labels.update(labels or {})
    d = n.description
    d.hostname = hostname
    d.addr = addr
    d.platform_os = "linux"
    d.platform_arch = "x86_64"
    d.engine_labels.update(engine or {})
    return n


@pytest.mark.parametrize(
    ("text", "key", "op", "value"),
    [
        ("node.hostname==host-a", "node.hostname", "==", "host-a"),
        ("  node.role != manager  ", "node.role", "!=", "manager"),
        ("node.labels.zone==east", "node.labels.zone", "==", "east"),
        ("engine.labels.disk==ssd", "engine.labels.disk", "==", "ssd"),
        ("node.labels.k8s.io/arch==amd64", "node.labels.k8s.io/arch", "==", "amd64"),
        ("node.ip==10.0.0.0/8", "node.ip", "==", "10.0.0.0/8"),
        ("node.labels.note==a b c", "node.labels.note", "==", "a b c"),
        ("node.labels.eq==x==y", "node.labels.eq", "==", "x==y"),
    ],
)
def test_expressions_parse_into_key_operator_value(text: str, key: str, op: str, value: str):
    c = parse_constraint(text)
    assert (c.key, c.op, c.value) == (key, op, value)


def test_a_constraint_prints_as_the_user_would_type_it():
    assert str(parse_constraint(" node.labels.zone == east ")) == "node.labels.zone==east"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("node.role=manager", "expected KEY==VALUE or KEY!=VALUE"),
        ("zone==east", "unknown key 'zone'"),
        ("node.colour==red", "unknown key 'node.colour'"),
        ("node.labels.==x", "unknown key 'node.labels.'"),
        ("node.hostname==", "missing value"),
        ("node.role==boss", "node.role is manager or worker"),
        ("node.ip==not-an-ip", "'not-an-ip' is not an address or CIDR"),
        ("", "expected KEY==VALUE"),
    ],
)
def test_bad_expressions_quote_the_text_and_say_what_is_wrong(text: str, message: str):
    with pytest.raises(ConstraintError) as err:
        parse_constraint(text)
    assert message in str(err.value)
    assert repr(text) in str(err.value)


def test_parse_constraints_stops_at_the_first_bad_one():
    assert parse_constraints([]) == []
    assert parse_constraints(["node.role==worker", "node.labels.a!=b"]) == [
        Constraint("node.role", "==", "worker"),
        Constraint("node.labels.a", "!=", "b"),
    ]
    with pytest.raises(ConstraintError, match="node.x"):
        parse_constraints(["node.role==worker", "node.x==1"])


@pytest.mark.parametrize(
    ("key", "want"),
    [
        ("node.id", "n1"),
        ("node.hostname", "host-a"),
        ("node.role", "worker"),
        ("node.ip", "10.0.0.5"),
        ("node.platform.os", "linux"),
        ("node.platform.arch", "x86_64"),
        ("node.labels.zone", "east"),
        ("engine.labels.disk", "ssd"),
        ("node.labels.missing", None),
        ("engine.labels.missing", None),
        ("node.unknown", None),
    ],
)
def test_node_value_reads_each_attribute(key: str, want: str | None):
    assert node_value(node(labels={"zone": "east"}, engine={"disk": "ssd"}), key) == want


def test_node_ip_is_none_for_a_node_without_an_address():
    assert node_value(node(addr=""), "node.ip") is None
    assert not parse_constraint("node.ip==10.0.0.0/8").matches(node(addr=""))


def test_equality_on_hostname_and_labels_is_exact():
    n = node(labels={"zone": "east"})
    assert parse_constraint("node.hostname==host-a").matches(n)
    assert not parse_constraint("node.hostname==HOST-A").matches(n)
    assert parse_constraint("node.labels.zone==east").matches(n)
    assert not parse_constraint("node.labels.zone==East").matches(n)


def test_role_and_platform_compare_without_case():
    n = node(role=pb.NodeSpec.MANAGER)
    assert parse_constraint("node.role==Manager").matches(n)
    assert parse_constraint("node.platform.os==Linux").matches(n)
    assert parse_constraint("node.platform.arch!=ARM64").matches(n)
    assert not parse_constraint("node.role==worker").matches(n)


def test_a_missing_label_fails_equality_and_passes_inequality():
    n = node()
    assert not parse_constraint("node.labels.zone==east").matches(n)
    assert parse_constraint("node.labels.zone!=east").matches(n)


@pytest.mark.parametrize(
    ("want", "addr", "hit"),
    [
        ("10.0.0.0/8", "10.0.0.5:4242", True),
        ("10.0.0.5", "10.0.0.5:4242", True),
        ("10.0.0.6", "10.0.0.5:4242", False),
        ("192.168.0.0/16", "10.0.0.5:4242", False),
        ("10.0.0.0/24", "10.0.0.5", True),
    ],
)
def test_node_ip_matches_an_address_or_a_cidr(want: str, addr: str, hit: bool):
    assert parse_constraint(f"node.ip=={want}").matches(node(addr=addr)) is hit
    assert parse_constraint(f"node.ip!={want}").matches(node(addr=addr)) is not hit
