"""The short syntaxes of ports and volumes read into their long forms, as docker reads them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.stack.values import mapping, parse_port, parse_volume, shell_words, string_list


def ports(text):
    return [(p.get("host_ip"), p.get("published"), p["target"], p["protocol"]) for p in parse_port(text)]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("80", [(None, None, 80, "tcp")]),
        (80, [(None, None, 80, "tcp")]),
        ("8080:80", [(None, 8080, 80, "tcp")]),
        ("8080:80/udp", [(None, 8080, 80, "udp")]),
        ("53:53/SCTP", [(None, 53, 53, "sctp")]),
        ("127.0.0.1:8001:8001", [("127.0.0.1", 8001, 8001, "tcp")]),
        ("[::1]:6001:6001", [("::1", 6001, 6001, "tcp")]),
        ("3000-3002", [(None, None, 3000, "tcp"), (None, None, 3001, "tcp"), (None, None, 3002, "tcp")]),
        ("9090-9091:8080-8081", [(None, 9090, 8080, "tcp"), (None, 9091, 8081, "tcp")]),
        ("10.0.0.1::80", [("10.0.0.1", None, 80, "tcp")]),
    ],
)
def test_short_ports(text, expected):
    assert ports(text) == expected
    assert all(p["mode"] == "ingress" for p in parse_port(text))


@pytest.mark.parametrize(
    "text,message",
    [
        ("http", "container port 'http' is not a port number or range"),
        ("0", "is not a port number (1-65535)"),
        ("70000:80", "published port '70000' is not a port number"),
        ("81-80", "range '81-80' ends before it starts"),
        ("8000-8001:80", "the published and container ranges differ in length"),
        ("1:2:3:4", "expected [HOST:]CONTAINER[/PROTOCOL]"),
        ("[::1]6001:6001", "expected [IPv6]:PUBLISHED:TARGET"),
        ("80/icmp", "unknown protocol 'icmp'"),
        (True, "expected a number or a string"),
        (1.5, "expected a number, a string such as '8080:80', or a mapping"),
    ],
)
def test_bad_short_ports(text, message):
    with pytest.raises(ValueError) as info:
        parse_port(text)
    assert message in str(info.value)


@settings(deadline=None)  # a loaded machine must not turn a slow example into a failure
@given(st.integers(1, 65535), st.integers(1, 65535), st.sampled_from(["tcp", "udp", "sctp"]))
def test_any_published_target_pair_round_trips(published, target, proto):
    assert parse_port(f"{published}:{target}/{proto}") == [{"mode": "ingress", "target": target, "protocol": proto, "published": published}]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("/var/log", {"type": "volume", "target": "/var/log"}),
        ("data:/data", {"type": "volume", "source": "data", "target": "/data"}),
        ("./conf:/etc/app:ro", {"type": "bind", "source": "./conf", "target": "/etc/app", "read_only": True}),
        ("~/x:/x:rw", {"type": "bind", "source": "~/x", "target": "/x"}),
        ("/srv:/srv:ro,rslave", {"type": "bind", "source": "/srv", "target": "/srv", "read_only": True, "bind": {"propagation": "rslave"}}),
        ("/srv:/srv:z", {"type": "bind", "source": "/srv", "target": "/srv", "bind": {"selinux": "z"}}),
        ("data:/data:nocopy", {"type": "volume", "source": "data", "target": "/data", "volume": {"nocopy": True}}),
        ("/a:/b:cached", {"type": "bind", "source": "/a", "target": "/b", "consistency": "cached"}),
    ],
)
def test_short_volumes(text, expected):
    assert parse_volume(text) == expected


@pytest.mark.parametrize("text", ["", "a:b:c:d", ":/x", "a::ro", 5, None])
def test_bad_short_volumes(text):
    with pytest.raises(ValueError, match="invalid volume"):
        parse_volume(text)


def test_list_or_dict_values():
    assert mapping(["A=1", "B", "C="], bare=None) == {"A": "1", "B": None, "C": ""}
    assert mapping({"A": 1, "B": True, "C": None, "D": 1.5}, bare=None) == {"A": "1", "B": "true", "C": None, "D": "1.5"}
    assert mapping(["A=1=2"]) == {"A": "1=2"}
    assert mapping(None) == {}
    with pytest.raises(ValueError, match="has no name before '='"):
        mapping(["=x"])
    with pytest.raises(ValueError, match="expected a mapping or a list"):
        mapping("A=1")


def test_commands_and_string_lists():
    assert shell_words("sh -c 'echo \"a b\"'") == ["sh", "-c", 'echo "a b"']
    assert shell_words(["a", 1, True]) == ["a", "1", "true"]
    assert shell_words(None) is None and shell_words("") == []
    with pytest.raises(ValueError, match="No closing quotation"):
        shell_words("echo 'x")
    assert string_list("/run") == ["/run"] and string_list(["/a", "/b"]) == ["/a", "/b"] and string_list(None) == []
    with pytest.raises(ValueError):
        string_list({"a": 1})
