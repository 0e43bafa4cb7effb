"""A node's certificate on disk: when it is valid, when it is renewed, and the manager addresses it dials.

Joining itself (the token, the CA check, the CSR over TLS) runs against a real manager in
tests/integration/test_security.py and test_control_plane.py.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest

from shoal import tls
from shoal.certfiles import CertFiles
from shoal.worker.identity import renewal_wait
from shoal.worker.join import NodeCredentials, renewal_due, split_addr


@pytest.fixture(scope="module")
def ca() -> tuple[bytes, bytes]:
    return tls.new_ca()


def issue(files: CertFiles, ca: tuple[bytes, bytes], role: str = "worker", **kw) -> None:
    key = tls.new_key()
    files.save(tls.sign(ca[0], ca[1], key.public_key(), "node-1", role, "cluster-1", **kw), tls.key_pem(key), ca[0])


def test_split_addr():
    assert split_addr("10.0.0.1:4242") == ("10.0.0.1", 4242)
    assert split_addr("[::1]:4242") == ("::1", 4242)
    assert split_addr(":4242") == ("127.0.0.1", 4242), "no host: this machine"
    with pytest.raises(ValueError):
        split_addr("manager-without-port")


def test_a_node_without_certificate_files_has_no_valid_certificate(tmp_path):
    assert not NodeCredentials(CertFiles(tmp_path)).valid()


def test_a_fresh_certificate_is_valid_and_says_who_the_node_is(tmp_path, ca):
    creds = NodeCredentials(CertFiles(tmp_path))
    issue(creds.files, ca, role="manager")
    assert creds.valid()
    info = creds.info()
    assert (info.node_id, info.role, info.cluster_id) == ("node-1", "manager", "cluster-1")


def test_an_expired_certificate_is_not_valid(tmp_path, ca):
    creds = NodeCredentials(CertFiles(tmp_path))
    issue(creds.files, ca, validity=dt.timedelta(hours=1), not_before=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    assert not creds.valid()


def test_a_certificate_with_another_key_is_not_valid(tmp_path, ca):
    creds = NodeCredentials(CertFiles(tmp_path))
    issue(creds.files, ca)
    creds.files.key.write_bytes(tls.key_pem(tls.new_key()))
    assert not creds.valid()


def test_channel_credentials_are_reused_until_the_certificate_changes(tmp_path, ca):
    creds = NodeCredentials(CertFiles(tmp_path))
    issue(creds.files, ca)
    first = creds.channel_credentials()
    assert creds.channel_credentials() is first
    issue(creds.files, ca)  # renewed: a new certificate file
    st = creds.files.cert.stat()
    os.utime(creds.files.cert, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    assert creds.channel_credentials() is not first


def test_renewal_falls_between_half_and_four_fifths_of_the_life():
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    info = tls.CertInfo("n", "worker", "c", start, start + dt.timedelta(days=100))
    for _ in range(50):
        due = renewal_due(info, at=start)
        assert 50 * 86400 <= due <= 80 * 86400


def test_a_certificate_past_its_renewal_point_is_due_now():
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    info = tls.CertInfo("n", "worker", "c", start, start + dt.timedelta(days=10))
    due = renewal_due(info, at=start + dt.timedelta(days=9))
    assert due <= 0 and renewal_wait(due) == 1.0
