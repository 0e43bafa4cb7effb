"""Properties of placement constraints over generated nodes and expressions (hypothesis).

What the scheduler relies on for every constraint, not only the examples in test_constraints.py: a
constraint prints back as text that parses to itself; ``!=`` is exactly the negation of ``==`` on
every node; spaces around the operator do not matter; a label constraint looks only at its own label;
``node.ip`` matching agrees with the ipaddress module.
"""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from shoal.constraints import Constraint, ConstraintError, node_value, parse_constraint
from shoal.proto import types_pb2 as pb

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=8)
values = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789-_.:/", min_size=1, max_size=10)
label_keys = names.map(lambda n: f"node.labels.{n}") | names.map(lambda n: f"engine.labels.{n}")
fixed = st.sampled_from(["node.id", "node.hostname", "node.platform.os", "node.platform.arch"])
ops = st.sampled_from(["==", "!="])


@st.composite
def nodes(draw: st.DrawFn) -> pb.Node:
    n = pb.Node(id=draw(names), description=pb.NodeDescription(
        hostname=draw(names), platform_os=draw(st.sampled_from(["linux", "Linux", "windows"])),
        platform_arch=draw(st.sampled_from(["x86_64", "aarch64"])),
        addr=f"10.0.{draw(st.integers(0, 255))}.{draw(st.integers(1, 254))}:4242"))  # fmt: skip
    n.spec.role = draw(st.sampled_from([pb.NodeSpec.WORKER, pb.NodeSpec.MANAGER]))
    n.spec.labels.update(draw(st.dictionaries(names, values, max_size=3)))
    n.description.engine_labels.update(draw(st.dictionaries(names, values, max_size=2)))
    return n


@st.composite
def constraints(draw: st.DrawFn) -> Constraint:
    key = draw(label_keys | fixed | st.just("node.role"))
    value = draw(st.sampled_from(["manager", "worker", "Manager"])) if key == "node.role" else draw(values)
    return Constraint(key, draw(ops), value)


@given(constraints())
def test_a_constraint_prints_as_text_that_parses_back_to_itself(c: Constraint):
    assert parse_constraint(str(c)) == c


@given(constraints(), st.text(alphabet=" ", max_size=3), st.text(alphabet=" ", max_size=3))
def test_spaces_around_the_operator_and_the_ends_do_not_matter(c: Constraint, left: str, right: str):
    assert parse_constraint(f"{left}{c.key}{left}{c.op}{right}{c.value}{right}") == c


@given(constraints(), nodes())
def test_not_equal_is_exactly_the_negation_of_equal(c: Constraint, node: pb.Node):
    eq, ne = Constraint(c.key, "==", c.value), Constraint(c.key, "!=", c.value)
    assert eq.matches(node) != ne.matches(node)


@given(nodes(), names, values)
def test_a_label_constraint_matches_exactly_when_the_node_has_that_value(node: pb.Node, key: str, value: str):
    c = parse_constraint(f"node.labels.{key}=={value}")
    assert c.matches(node) == (node.spec.labels.get(key) == value)
    node.spec.labels[key] = value
    assert c.matches(node)
    other = f"{key}x"
    node.spec.labels[other] = value + "y"
    assert c.matches(node), "other labels never matter"


@given(nodes())
def test_each_node_matches_its_own_identity(node: pb.Node):
    for key in ("node.id", "node.hostname", "node.platform.os", "node.platform.arch", "node.role"):
        value = node_value(node, key)
        assert value is not None
        assert parse_constraint(f"{key}=={value}").matches(node)
        assert not parse_constraint(f"{key}!={value}").matches(node)


@given(nodes(), st.integers(8, 32))
def test_node_ip_matching_agrees_with_the_networks_it_lies_in(node: pb.Node, prefix: int):
    addr = ipaddress.ip_address(node.description.addr.rsplit(":", 1)[0])
    net = ipaddress.ip_network(f"{addr}/{prefix}", strict=False)
    assert parse_constraint(f"node.ip=={net}").matches(node)
    assert parse_constraint(f"node.ip=={addr}").matches(node)
    outside = ipaddress.ip_network("192.168.77.0/24")
    assert not parse_constraint(f"node.ip=={outside}").matches(node)


@given(st.text(max_size=20))
def test_any_text_parses_or_fails_with_one_error_quoting_it(text: str):
    try:
        c = parse_constraint(text)
    except ConstraintError as exc:
        assert repr(text) in str(exc)
    else:
        assert c.op in ("==", "!=") and c.value and parse_constraint(str(c)) == c
