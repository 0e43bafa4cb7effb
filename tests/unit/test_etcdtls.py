"""etcd's own CA and certificates (shoal.etcdtls) and `shoal etcd-certs`: what a deployment relies on."""

from __future__ import annotations

import ipaddress
import stat

from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from shoal import etcdtls, tls
from shoal.cli.etcdcerts import etcd_certs_cmd


def _cert(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_a_member_certificate_serves_its_addresses_and_is_signed_by_the_etcd_ca(tmp_path):
    m = etcdtls.ensure_pair(tmp_path, "node1", ["10.0.0.11", "etcd1.example"], server=True)
    c = _cert(m.cert)
    sans = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("10.0.0.11") in sans.get_values_for_type(x509.IPAddress)
    assert "etcd1.example" in sans.get_values_for_type(x509.DNSName)
    usages = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usages and ExtendedKeyUsageOID.CLIENT_AUTH in usages  # peers use it both ways
    assert tls.issued_by(m.cert.read_bytes(), m.ca.read_bytes())
    assert stat.S_IMODE(m.key.stat().st_mode) == 0o600 and stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600


def test_a_client_certificate_cannot_serve(tmp_path):
    c = _cert(etcdtls.ensure_pair(tmp_path, "managers", [], server=False).cert)
    assert ExtendedKeyUsageOID.SERVER_AUTH not in c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value


def test_pairs_are_made_once_and_share_one_ca(tmp_path):
    a = etcdtls.ensure_pair(tmp_path, "node1", ["10.0.0.11"], server=True)
    first = a.cert.read_bytes()
    b = etcdtls.ensure_pair(tmp_path, "managers", [], server=False)
    assert etcdtls.ensure_pair(tmp_path, "node1", ["10.0.0.11"], server=True).cert.read_bytes() == first
    assert tls.issued_by(b.cert.read_bytes(), a.ca.read_bytes())


def test_server_flags_demand_client_certificates_for_clients_and_peers(tmp_path):
    flags = etcdtls.server_flags(etcdtls.files(tmp_path, "node1"))
    assert "--client-cert-auth" in flags and "--peer-client-cert-auth" in flags
    assert flags[flags.index("--trusted-ca-file") + 1] == str(tmp_path / "ca.crt")


def test_etcd_certs_makes_members_and_the_managers_client(tmp_path):
    res = CliRunner().invoke(etcd_certs_cmd, ["--dir", str(tmp_path), "--member", "node1=10.0.0.11", "--member", "node2=10.0.0.12"])
    assert res.exit_code == 0, res.output
    assert {p.name for p in tmp_path.iterdir()} == {"ca.crt", "ca.key", "node1.crt", "node1.key", "node2.crt", "node2.key", "managers.crt", "managers.key"}


def test_etcd_certs_refuses_a_bad_member_before_writing_anything(tmp_path):
    out = tmp_path / "certs"
    res = CliRunner().invoke(etcd_certs_cmd, ["--dir", str(out), "--member", "node1=10.0.0.11", "--member", "../x=1.2.3.4"])
    assert res.exit_code != 0 and "'../x=1.2.3.4'" in res.output
    assert not out.exists()
