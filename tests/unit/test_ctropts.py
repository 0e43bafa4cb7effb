"""ulimits, sysctls, stop signals and DNS settings (shoal.ctropts), including the sysctl escapes it closes."""

from __future__ import annotations

import signal

import pytest

from shoal import ctropts


def test_ulimits_parse_as_docker_writes_them() -> None:
    assert ctropts.parse_ulimit("nofile=1024:2048") == ("nofile", 1024, 2048)
    assert ctropts.parse_ulimit("nproc=64") == ("nproc", 64, 64)
    assert ctropts.parse_ulimit("core=-1") == ("core", -1, -1)
    assert ctropts.parse_ulimit("memlock=1:-1") == ("memlock", 1, -1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nofile", "expected NAME=SOFT"),
        ("files=1", "invalid ulimit name 'files'"),
        ("nofile=a:b", "whole numbers"),
        ("nofile=10:5", "soft limit 10 is above the hard limit 5"),
        ("nofile=-1:5", "above the hard limit"),
        ("nofile=-2", "use -1 for unlimited"),
    ],
)
def test_bad_ulimits(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ctropts.parse_ulimit(text)


def test_a_ulimit_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="given twice"):
        ctropts.check_ulimits([("nofile", 1, 1), ("nofile", 2, 2)])


@pytest.mark.parametrize("text", ["net.core.somaxconn=1024", "net.ipv4.ip_unprivileged_port_start=0", "kernel.shmmax=1000",
                                  "kernel.msgmax=100", "kernel.sem=250 32000 32 128", "fs.mqueue.msg_max=20",
                                  "net.ipv4.conf.eth-0.forwarding=1"])
def test_namespaced_sysctls_are_allowed(text: str) -> None:
    key, value = ctropts.parse_sysctl(text)
    assert f"{key}={value}" == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kernel.core_pattern=|/tmp/x", "not allowed"),  # the host's crash handler: root on the node
        ("kernel.modprobe=/tmp/x", "not allowed"),
        ("vm.overcommit_memory=1", "not allowed"),
        ("kernel.hostname=x", "not allowed"),
        ("net/../kernel/core_pattern=x", "dot-separated words"),  # climbing out of /proc/sys/net
        ("net...kernel.core_pattern=x", "dot-separated words"),
        ("net.core.somaxconn", "expected KEY=VALUE"),
        ("net.core.somaxconn=1\nkernel.x=1", "invalid value"),
        ("net.core.somaxconn=", "invalid value"),
    ],
)
def test_sysctls_outside_the_containers_namespaces_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ctropts.parse_sysctl(text)


def test_stop_signals_by_name_short_name_or_number() -> None:
    assert ctropts.signal_number("SIGUSR1") == signal.SIGUSR1
    assert ctropts.signal_number("usr2") == signal.SIGUSR2
    assert ctropts.signal_number("9") == 9
    for bad in ("SIGNOPE", "0", "99", "SIG_DFL", ""):
        with pytest.raises(ValueError, match="invalid signal"):
            ctropts.signal_number(bad)


def test_dns_values() -> None:
    ctropts.check_nameserver("1.1.1.1")
    ctropts.check_nameserver("2001:db8::1")
    ctropts.check_dns_search("example.com")
    ctropts.check_dns_option("ndots:2")
    ctropts.check_dns_option("rotate")
    for fn, bad in ((ctropts.check_nameserver, "dns.google"), (ctropts.check_dns_search, "a b"),
                    (ctropts.check_dns_option, "ndots=2"), (ctropts.check_dns_search, "x\nnameserver 6.6.6.6")):
        with pytest.raises(ValueError):
            fn(bad)
