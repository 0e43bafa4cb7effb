"""``shoal run -p``: docker's flag syntax, the checked entries, and the standalone table the launcher loads."""

from __future__ import annotations

import pytest

from shoal.runtime import ConfigError, ContainerConfig, ports
from shoal.runtime.launcher import hostnet
from shoal.runtime.spec import validate


def entry(host: int, container: int, proto: str = "tcp", ip: str = "") -> dict:
    return {"host_ip": ip, "host_port": host, "container_port": container, "protocol": proto}


@pytest.mark.parametrize("flag, want", [
    ("8080:80", [entry(8080, 80)]),
    ("5353:53/udp", [entry(5353, 53, "udp")]),
    ("127.0.0.1:8080:80/TCP", [entry(8080, 80, ip="127.0.0.1")]),
    ("8080-8081:80-81", [entry(8080, 80), entry(8081, 81)]),
])
def test_dockers_publish_forms(flag, want):
    assert ports.parse(flag) == want


@pytest.mark.parametrize("flag, message", [
    ("80", "a host port is required"),
    (":80", "a host port is required"),
    ("x:80", "host port 'x' is not a number"),
    ("8080:0", "container port '0' must be 1-65535"),
    ("8081-8080:80-81", "host port '8081-8080' must be 1-65535"),
    ("8080:80/icmp", "protocol 'icmp' is not tcp or udp"),
])
def test_bad_publish_flags_name_the_problem(flag, message):
    with pytest.raises(ConfigError, match="invalid publish") as err:
        ports.parse(flag)
    assert message in str(err.value)


def test_the_spec_normalizes_entries_and_refuses_a_host_port_twice():
    spec = validate(ContainerConfig(id="c1", image="host", args=["true"],
                                    publish=[entry(8080, 80, ip="0.0.0.0"), entry(8080, 80, "udp")]))
    assert spec.publish == [entry(8080, 80), entry(8080, 80, "udp")]
    with pytest.raises(ConfigError, match="host port 8080/tcp is given twice"):
        validate(ContainerConfig(id="c1", image="host", args=["true"], publish=[entry(8080, 80), entry(8080, 81)]))
    with pytest.raises(ConfigError, match="not an IPv4 address"):
        validate(ContainerConfig(id="c1", image="host", args=["true"], publish=[entry(8080, 80, ip="::1")]))


def test_publish_is_refused_with_a_namespace_of_the_callers():
    with pytest.raises(ConfigError, match="publish cannot be used with netns_path"):
        validate(ContainerConfig(id="c1", image="host", args=["true"], netns_path="/run/netns/x",
                                 publish=[entry(8080, 80)]))


def test_the_table_forwards_each_port_to_its_container_and_is_replaced_whole():
    text = hostnet.table_text([("10.209.0.2", [entry(8080, 80), entry(5353, 53, "udp")]),
                               ("10.209.0.3", [entry(8443, 443, ip="192.0.2.10")])])
    assert text.startswith("add table ip shoal-run\ndelete table ip shoal-run\n")
    assert "elements = { tcp . 8080 : 10.209.0.2 . 80, udp . 5353 : 10.209.0.2 . 53 }" in text
    assert "elements = { 192.0.2.10 . tcp . 8443 : 10.209.0.3 . 443 }" in text
    assert 'ip saddr 127.0.0.0/8 oifname "shoalrun0" masquerade' in text


def test_addresses_are_handed_out_lowest_first_and_ports_overlap_across_addresses():
    assert hostnet.next_address([]) == "10.209.0.2"
    assert hostnet.next_address(["10.209.0.2", "10.209.0.4"]) == "10.209.0.3"
    assert hostnet.overlaps(entry(80, 1), entry(80, 2, ip="127.0.0.1"))  # unbound claims every address
    assert not hostnet.overlaps(entry(80, 1, ip="127.0.0.2"), entry(80, 2, ip="127.0.0.1"))
    assert not hostnet.overlaps(entry(80, 1), entry(80, 1, "udp"))
    assert ports.describe(entry(8080, 80)) == "0.0.0.0:8080->80/tcp"
