"""The lab's etcd CA files are written once, before any member starts, and never rewritten beside a running member.

A member reads ``ca.crt`` each time it builds a TLS config (listeners, peer round trippers), at moments of
its own while it starts. The lab once issued each member's certificate just before starting that member,
rewriting ``ca.crt`` in place (truncate, then write) while the members started before it read it: a
member that read the empty file got an empty trust pool, with no error, and from then on refused every
peer's certificate in its version checks and lease forwarding ("x509: certificate signed by unknown
authority", "rejected connection ... bad certificate" on the peers), so the managers' leases it
forwarded ran out.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

from shoal import etcdtls, tls
from shoal.lab import lifecycle, procs, state

PAST = 1_600_000_000  # a file whose mtime stays here was not written again


def _snapshot(directory: Path) -> dict[str, tuple[int, int, bytes]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(directory.iterdir())}


def _age(directory: Path) -> None:
    for p in directory.iterdir():
        os.utime(p, (PAST, PAST))


def test_issuing_another_pair_does_not_write_the_ca_file_again(tmp_path: Path):
    etcdtls.ensure_pair(tmp_path, "manager1", ["172.30.9.2"], server=True)
    ca = tmp_path / "ca.crt"
    os.utime(ca, (PAST, PAST))
    before = (ca.stat().st_ino, ca.stat().st_mtime_ns)
    etcdtls.ensure_pair(tmp_path, "manager2", ["172.30.9.3"], server=True)
    etcdtls.ensure_pair(tmp_path, "managers", [], server=False)
    assert (ca.stat().st_ino, ca.stat().st_mtime_ns) == before


def test_a_pair_is_written_whole_with_the_ca_readable_and_the_key_private(tmp_path: Path):
    a = etcdtls.ensure_pair(tmp_path, "manager1", ["172.30.9.2"], server=True)
    assert not list(tmp_path.glob("*.tmp")), "no temporary file left behind"
    assert tls.issued_by(a.cert.read_bytes(), a.ca.read_bytes())
    assert oct(a.ca.stat().st_mode & 0o777) == "0o644" and oct(a.key.stat().st_mode & 0o777) == "0o600"


def test_every_etcd_certificate_exists_before_the_first_member_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(procs.shutil, "which", lambda name: "/usr/bin/etcd")
    lab = state.plan("t", 3, 1, ipaddress.ip_network("172.30.9.0/24"), tmp_path)
    Path(lab.dir).mkdir(parents=True)
    seen: list[dict[str, tuple[int, int, bytes]]] = []

    class Started(Exception):
        pass

    def spawn(node: state.Node, argv: list[str], name: str, env: dict[str, str] | None = None) -> state.Proc:
        seen.append(_snapshot(lab.etcd_tls_dir))
        if len(seen) == 1:
            _age(lab.etcd_tls_dir)  # from here on, any write shows in the mtimes
            seen[0] = _snapshot(lab.etcd_tls_dir)
        if len(seen) == 3:
            raise Started
        return state.Proc(os.getpid(), 0)

    monkeypatch.setattr(procs, "spawn", spawn)
    # no real mount namespaces from a unit test: nothing would unmount them (lab down is not run here)
    monkeypatch.setattr(lifecycle.mountns, "create", lambda lab, node: seen and pytest.fail("a namespace made after a member started"))
    with pytest.raises(Started):
        lifecycle._start(lab)
    names = {f"{m}.{ext}" for m in ("manager1", "manager2", "manager3", "managers") for ext in ("crt", "key")}
    assert names | {"ca.crt", "ca.key"} == set(seen[0]), "the first member starts with every certificate issued"
    assert seen[1] == seen[0] and seen[2] == seen[0], "nothing in etcd-tls is written while members start"


def test_the_lab_tests_count_certificate_refusals_not_clients_that_hung_up():
    from tests.e2e.lab_fixtures import refuses_a_certificate

    head = '{"level":"warn","msg":"rejected connection","remote-addr":"172.30.0.1:37446","server-name":"",'
    assert refuses_a_certificate(head + '"error":"remote error: tls: bad certificate"}')
    assert refuses_a_certificate(head + '"error":"x509: certificate signed by unknown authority"}')
    assert refuses_a_certificate(head + '"error":"tls: first record does not look like a TLS handshake"}')
    assert not refuses_a_certificate(head + '"error":"EOF"}')
    assert not refuses_a_certificate(head + '"error":"read tcp: connection reset by peer"}')
    assert not refuses_a_certificate('{"level":"info","msg":"published local member"}')
