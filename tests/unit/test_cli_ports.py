"""`--publish` short syntax (`[published:]target[/proto]`, ranges) and long syntax (`published=,target=,...`)."""

from __future__ import annotations

import pytest

from shoal.cli.service_opts import FlagError, parse_port
from shoal.cli.service_views import port_text
from shoal.proto import types_pb2

P = types_pb2.PortConfig


def ports(text: str) -> list[tuple[int, int, int, int]]:
    return [(p.published_port, p.target_port, p.protocol, p.publish_mode) for p in parse_port(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("80", [(0, 80, P.TCP, P.INGRESS)]),
        ("8080:80", [(8080, 80, P.TCP, P.INGRESS)]),
        ("53:53/udp", [(53, 53, P.UDP, P.INGRESS)]),
        ("53/UDP", [(0, 53, P.UDP, P.INGRESS)]),
        ("9000:9000/sctp", [(9000, 9000, P.SCTP, P.INGRESS)]),
        ("8080-8082:80-82", [(8080, 80, 0, 0), (8081, 81, 0, 0), (8082, 82, 0, 0)]),
        ("7000-7001", [(0, 7000, 0, 0), (0, 7001, 0, 0)]),
    ],
)
def test_short_syntax(text: str, expected: list[tuple[int, int, int, int]]) -> None:
    assert ports(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("published=8080,target=80", (8080, 80, P.TCP, P.INGRESS)),
        ("target=80", (0, 80, P.TCP, P.INGRESS)),
        ("published=53,target=53,protocol=udp,mode=host", (53, 53, P.UDP, P.HOST)),
        ("mode=ingress, target=443 ,published=8443", (8443, 443, P.TCP, P.INGRESS)),
    ],
)
def test_long_syntax(text: str, expected: tuple[int, int, int, int]) -> None:
    assert ports(text) == [expected]


def test_long_syntax_name() -> None:
    assert parse_port("target=80,name=http")[0].name == "http"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("http", "invalid target port"),
        ("80:http", "invalid target port"),
        ("0", "must be 1-65535"),
        ("70000", "must be 1-65535"),
        ("8080:80/icmp", "invalid protocol"),
        ("127.0.0.1:8080:80", "host IP is not supported"),
        ("8080-8081:80", "same size"),
        ("published=8080", 'missing mandatory field "target"'),
        ("target=80,mode=bridge", "invalid publish mode"),
        ("target=80,protocol=icmp", "invalid protocol"),
        ("target=80,colour=red", "invalid field key"),
        ("target=80,published", "key=value"),
    ],
)
def test_bad_ports_name_the_flag_and_value(text: str, reason: str) -> None:
    with pytest.raises(FlagError) as info:
        parse_port(text)
    msg = info.value.message
    assert msg.startswith(f'invalid argument "{text}" for "--publish" flag: ')
    assert reason in msg


def test_port_text_like_docker() -> None:
    assert port_text(P(published_port=8080, target_port=80)) == "*:8080->80/tcp"
    assert port_text(P(published_port=53, target_port=53, protocol=P.UDP)) == "*:53->53/udp"
    assert port_text(P(published_port=8080, target_port=80, publish_mode=P.HOST)) == "8080->80/tcp"
    assert port_text(P(target_port=80)) == "*:->80/tcp"
