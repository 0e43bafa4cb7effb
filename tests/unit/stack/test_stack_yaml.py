"""The YAML layer: YAML 1.2 types, docker's octal, anchors and merge keys, and positions for everything."""

from __future__ import annotations

import pytest

from shoal.stack.errors import Position, Problems
from shoal.stack.yamlfile import parse


def load(text: str):
    problems = Problems()
    data, marks = parse(text, "f.yml", problems)
    return data, marks, [str(p) for p in problems.items]


@pytest.mark.parametrize(
    "text,value",
    [
        ("22:22", "22:22"), ("yes", "yes"), ("off", "off"), ("0440", 0o440), ("0o440", 0o440), ("440", 440),
        ("0x1F", 31), ("-7", -7), ("1.5", 1.5), ("1e3", 1000.0), ("~", None), ("null", None), ("", None),
        ("true", True), ("False", False), ('"3"', "3"), ("'0440'", "0440"), ("08080", 8080), ("2001-12-14", "2001-12-14"),
        ("!!str 12", "12"), ("!!int '12'", 12), ("1_000", "1_000"),
    ],
)  # fmt: skip
def test_scalars_read_as_yaml_1_2_with_dockers_octal(text, value):
    data, _, problems = load(f"v: {text}\n")
    assert problems == [] and data == {"v": value}


def test_colons_in_flow_sequences_are_yaml_1_2_strings():
    data, _, problems = load("ports: [8080:80, 9090-9091:8080-8081/udp]\n")
    assert problems == [] and data == {"ports": ["8080:80", "9090-9091:8080-8081/udp"]}


def test_anchors_and_merge_keys():
    text = "x: &base {image: nginx, init: true}\ny:\n  <<: *base\n  image: httpd\nz:\n  <<: [{a: 1}, {a: 2, b: 2}]\n"
    data, _, problems = load(text)
    assert problems == []
    assert data["y"] == {"image": "httpd", "init": True}
    assert data["z"] == {"a": 1, "b": 2}


def test_positions_of_keys_values_and_items():
    _, marks, _ = load("services:\n  web:\n    ports:\n      - '80'\n      - 443\n")
    assert marks.key(("services", "web", "ports")) == Position("f.yml", 3, 5)
    assert marks.value(("services", "web", "ports", 1)) == Position("f.yml", 5, 9)
    assert marks.value(("services", "web", "ports", 7, "nope")) == Position("f.yml", 4, 7)  # nearest known


def test_every_duplicate_key_is_reported_with_its_path():
    _, _, problems = load("a:\n  b: 1\n  b: 2\nc: 1\nc: 2\nd: [{e: 1, e: 2}]\n")
    assert problems == [
        "f.yml:3:3: a: duplicate key 'b' (first defined at line 2)",
        "f.yml:5:1: duplicate key 'c' (first defined at line 4)",
        "f.yml:6:12: d[0]: duplicate key 'e' (first defined at line 6)",
    ]


@pytest.mark.parametrize(
    "text,problem",
    [
        ("a: !!binary aGVsbG8=\n", "f.yml:1:4: a: unsupported YAML value (tag:yaml.org,2002:binary): use a string, number, list or mapping"),
        ("a: !thing x\n", "f.yml:1:4: a: unsupported YAML value (!thing): use a string, number, list or mapping"),
        ("? [1, 2]\n: x\n", "f.yml:1:3: a key must be a string, not a list"),
        ("1: x\n", "f.yml:1:1: key '1' must be a string (quote it)"),
        ("a: &x [1, *x]\n", "f.yml:1:4: a[1]: an alias refers to a mapping or list that contains it"),
        ("a: !!int abc\n", "f.yml:1:4: a: 'abc' is not a valid int"),
        ("a: 1\n---\nb: 2\n", "f.yml:2:1: invalid YAML: expected a single document in the stream: but found another document"),
        ("x:\n  <<: 3\n", "f.yml:2:7: x: a merge key (<<) needs a mapping or a list of mappings"),
    ],
)
def test_values_that_are_not_compose_data_are_problems(text, problem):
    _, _, problems = load(text)
    assert problems == [problem]


def test_deep_nesting_is_refused_not_a_crash():
    _, _, problems = load("a: " + "[" * 100 + "]" * 100 + "\n")
    assert len(problems) == 1 and "nested more than 64 levels deep" in problems[0]
