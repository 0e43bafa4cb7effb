"""Unit tests of the cluster PKI: tokens, certificates, the sealed CA key, authorization rules."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from shoal import tls
from shoal.certfiles import CertFiles
from shoal.manager import ca as cluster_ca
from shoal.manager.auth import Identity, allowed, refusal
from shoal.manager.dispatcher.register import token_check
from shoal.manager.store.memory import MemoryStore
from shoal.proto import types_pb2 as pb


def test_token_shape_and_parse():
    cert, _ = tls.new_ca()
    d = tls.ca_digest(cert)
    tok = tls.make_token(d)
    assert tok.startswith(f"SHOAL-1-{d}-") and len(tok.split("-")[3]) == 25
    assert tls.parse_token(tok)[0] == d
    for bad in ("", "SHOAL-1-abc-def", f"SWMTKN-1-{d}-{'a' * 25}", f"SHOAL-2-{d}-{'a' * 25}"):
        with pytest.raises(tls.TokenError, match="invalid join token"):
            tls.parse_token(bad)


def test_node_certificate_subject():
    ca, key = tls.new_ca()
    k = tls.new_key()
    cert = tls.sign(ca, key, tls.csr_public_key(tls.make_csr(k)), "n1", "worker", "c1")
    info = tls.cert_info(cert)
    assert (info.node_id, info.role, info.cluster_id) == ("n1", "worker", "c1")
    assert info.not_after - info.not_before == tls.DEFAULT_VALIDITY
    assert tls.issued_by(cert, ca) and not tls.issued_by(cert, tls.new_ca()[0])
    assert tls.matches_key(cert, tls.key_pem(k)) and not tls.matches_key(cert, tls.key_pem(tls.new_key()))
    with pytest.raises(ValueError, match="unknown role"):
        tls.sign(ca, key, k.public_key(), "n1", "root", "c1")


def test_renewal_between_50_and_80_percent():
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    info = tls.CertInfo("n", "worker", "c", start, start + dt.timedelta(days=100))
    rng = random.Random(1)
    points = [(tls.renew_at(info, rng) - start).days for _ in range(200)]
    assert min(points) >= 50 and max(points) < 80 and max(points) - min(points) > 20


def test_join_certificate_is_signed_by_the_derived_join_ca():
    ca, _ = tls.new_ca()
    d = tls.ca_digest(ca)
    cert, _ = tls.join_cert(d)
    assert tls.issued_by(cert, tls.join_ca(d))
    assert not tls.issued_by(cert, ca)
    assert not tls.issued_by(cert, tls.join_ca(tls.ca_digest(tls.new_ca()[0])))


def test_sealed_ca_key():
    kek = b"k" * 32
    blob = cluster_ca.seal(kek, b"secret")
    assert b"secret" not in blob and cluster_ca.unseal(kek, blob) == b"secret"
    with pytest.raises(cluster_ca.CAError, match="cannot be unsealed"):
        cluster_ca.unseal(b"x" * 32, blob)


async def test_ca_created_once_and_needs_the_kek(tmp_path):
    store = MemoryStore()
    a = await cluster_ca.ensure(store, tmp_path / "m1")
    assert (tmp_path / "m1" / "ca.kek").stat().st_mode & 0o777 == 0o600
    kv = await store.get(cluster_ca.ROOT_CA)
    assert a.key_pem not in kv.value  # only the sealed key is in the store
    again = await cluster_ca.ensure(store, tmp_path / "m1")
    assert again.cert_pem == a.cert_pem and again.key_pem == a.key_pem
    with pytest.raises(cluster_ca.CAError, match="--join ADDR --token"):
        await cluster_ca.ensure(store, tmp_path / "m2")
    joined = await cluster_ca.ensure(store, tmp_path / "m2", kek=a.kek)
    assert joined.key_pem == a.key_pem and (tmp_path / "m2" / "ca.kek").exists()


async def test_needs_new_cert(tmp_path):
    ca = await cluster_ca.ensure(MemoryStore(), tmp_path)
    files = CertFiles(tmp_path)
    assert cluster_ca.needs_new_cert(files, ca, "n1", "manager")
    ca.issue_files(files, "n1", "manager", "c")
    assert not cluster_ca.needs_new_cert(files, ca, "n1", "manager")
    assert cluster_ca.needs_new_cert(files, ca, "n2", "manager")
    assert cluster_ca.needs_new_cert(files, ca, "n1", "worker")


@pytest.mark.parametrize(
    ("role", "method", "ok"),
    [
        ("join", "/shoal.v1.Dispatcher/Register", True),
        ("join", "/shoal.v1.Dispatcher/Session", False),
        ("join", "/shoal.v1.Control/ListServices", False),
        ("worker", "/shoal.v1.Dispatcher/Heartbeat", True),
        ("worker", "/shoal.v1.Control/ListServices", False),
        ("manager", "/shoal.v1.Dispatcher/Session", True),
        ("manager", "/shoal.v1.Control/RotateJoinToken", True),
        ("admin", "/shoal.v1.Control/ListServices", True),
        ("admin", "/shoal.v1.Dispatcher/Session", False),
        ("", "/shoal.v1.Dispatcher/Register", False),
    ],
)
def test_authorization_matrix(role, method, ok):
    assert allowed(Identity(role, "n"), method) is ok
    if not ok:
        assert refusal(Identity(role, "n"), method).startswith("permission denied")


def test_token_check():
    ca, _ = tls.new_ca()
    d = tls.ca_digest(ca)
    c = pb.Cluster(worker_token=tls.make_token(d), manager_token=tls.make_token(d), ca_digest=d)
    assert token_check(c.worker_token, c) == (pb.NodeSpec.WORKER, "")
    assert token_check(c.manager_token, c) == (pb.NodeSpec.MANAGER, "")
    assert "rotated out" in token_check(tls.make_token(d), c)[1]
    assert "another cluster" in token_check(tls.make_token(tls.ca_digest(tls.new_ca()[0])), c)[1]
    assert "expected SHOAL-1" in token_check("nope", c)[1]
