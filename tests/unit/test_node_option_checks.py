"""Every refusal of a node's start-up options, with the flag it names, before anything is written.

``ManagerOptions.check`` and ``WorkerOptions.check`` on plain data: conflicting flags, the address pool,
etcd endpoints that must serve TLS with the three certificate files, the election TTL in whole seconds,
an unknown socket group, availability words.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.node.options import ManagerOptions, NodeError, WorkerOptions, check_pool


def manager(tmp_path: Path, **kw: object) -> ManagerOptions:
    return ManagerOptions(data_dir=tmp_path / "m", **kw)  # type: ignore[arg-type]


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, str]:
    out = {}
    for name in ("ca", "cert", "key"):
        f = tmp_path / f"etcd-{name}.pem"
        f.write_text(name)
        out[f"etcd_{name}"] = str(f)
    return out


def test_defaults_pass(tmp_path):
    manager(tmp_path).check()
    WorkerOptions(data_dir=tmp_path / "w", join=["10.0.0.1:4242"], token="SHOAL-1-x-y").check()


@pytest.mark.parametrize(("kw", "words"), [
    ({"init": True, "join": ["10.0.0.1:4242"], "token": "t"}, "--init creates a new cluster; --join joins an existing one"),
    ({"join": ["10.0.0.1:4242"], "token": "t", "default_addr_pool": "10.9.0.0/16"}, "--default-addr-pool is chosen when the cluster is created"),
    ({"join": ["10.0.0.1:4242"], "token": "t", "default_addr_pool_mask_length": 26}, "--default-addr-pool-mask-length is chosen when the cluster is created"),
    ({"default_addr_pool_mask_length": 30}, "invalid --default-addr-pool-mask-length 30: between the pool's /16 and /29"),
    ({"default_addr_pool": "10.9.0.0/20", "default_addr_pool_mask_length": 18}, "between the pool's /20 and /29"),
    ({"join": ["10.0.0.1:4242"]}, "--join needs the manager join token (--token)"),
    ({"election_ttl": 0.5}, "--election-ttl 0.5: etcd leases are whole seconds, at least 1"),
    ({"election_ttl": 2.5}, "--election-ttl 2.5"),
    ({"availability": "sleepy"}, "--availability 'sleepy': expected one of active, pause, drain"),
    ({"socket_group": "no-such-group-shoal-test"}, "--socket-group 'no-such-group-shoal-test': no such group"),
    ({"etcd_ca": "/x"}, "--etcd-ca/--etcd-cert/--etcd-key go with --etcd"),
    ({"etcd": ["http://10.0.0.1:2379"]}, "--etcd 'http://10.0.0.1:2379': etcd must serve TLS with client certificates"),
    ({"etcd": ["https://10.0.0.1:2379"]}, "--etcd needs --etcd-ca"),
])  # fmt: skip
def test_a_manager_option_that_cannot_work_is_refused_naming_the_flag(tmp_path, kw, words):
    with pytest.raises(NodeError) as e:
        manager(tmp_path, **kw).check()
    assert words in str(e.value)
    assert not (tmp_path / "m").exists(), "nothing written"


def test_etcd_certificate_files_must_exist(tmp_path, certs):
    manager(tmp_path, etcd=["https://10.0.0.1:2379"], **certs).check()
    missing = {**certs, "etcd_key": str(tmp_path / "absent.pem")}
    with pytest.raises(NodeError, match=r"--etcd-key .*absent\.pem: no such file"):
        manager(tmp_path, etcd=["https://10.0.0.1:2379"], **missing).check()
    partial = {k: v for k, v in certs.items() if k != "etcd_cert"}
    with pytest.raises(NodeError, match="--etcd needs --etcd-cert"):
        manager(tmp_path, etcd=["https://10.0.0.1:2379"], **partial).check()


def test_every_etcd_endpoint_must_be_https(tmp_path, certs):
    with pytest.raises(NodeError, match="'http://10.0.0.2:2379'"):
        manager(tmp_path, etcd=["https://10.0.0.1:2379", "http://10.0.0.2:2379"], **certs).check()


def test_a_numeric_socket_group_is_taken_as_a_gid(tmp_path):
    manager(tmp_path, socket_group="4242").check()


def test_a_whole_second_election_ttl_is_fine(tmp_path):
    manager(tmp_path, election_ttl=3.0).check()


@pytest.mark.parametrize("pool", ["10.210.0.0/16", "172.20.0.0/24", "10.0.0.0/8"])
def test_address_pools_from_slash_8_to_slash_24(tmp_path, pool):
    check_pool(pool)
    manager(tmp_path, init=True, default_addr_pool=pool).check()


@pytest.mark.parametrize(("pool", "words"), [
    ("10.210.0.1/16", "has host bits set"),
    ("banana", "does not appear to be an IPv4 or IPv6 network"),
    ("10.0.0.0/25", "use an IPv4 network from /8 to /24"),
    ("10.0.0.0/7", "use an IPv4 network from /8 to /24"),
    ("fd00::/64", "use an IPv4 network"),
])  # fmt: skip
def test_a_bad_address_pool_is_one_error_naming_it(pool, words):
    with pytest.raises(NodeError, match="invalid --default-addr-pool") as e:
        check_pool(pool)
    assert pool in str(e.value) and words in str(e.value)


@pytest.mark.parametrize(("kw", "words"), [
    ({"join": [], "token": "t"}, "--join needs at least one manager address"),
    ({"join": ["10.0.0.1:4242"], "token": ""}, "--token is needed to join"),
    ({"join": ["10.0.0.1:4242"], "token": "t", "availability": "off"}, "--availability 'off'"),
])  # fmt: skip
def test_a_worker_needs_managers_and_a_token(tmp_path, kw, words):
    with pytest.raises(NodeError) as e:
        WorkerOptions(data_dir=tmp_path / "w", **kw).check()  # type: ignore[arg-type]
    assert words in str(e.value)
