"""Certificates and join tokens: the pure crypto both sides of a join share.

Managers sign (manager/ca.py), nodes make keys and CSRs and check the CA digest in their token
(worker/join.py); both need the same digest, token and subject conventions, so they live here, in
the core layer, with no I/O. A node certificate's CN is the node id, its OU the role (``manager``,
``worker`` or ``admin``), its O the cluster id; every manager certificate also carries the DNS name
``shoal-manager``, the name clients check (``grpc.ssl_target_name_override``), so a manager can be
reached by any address.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import secrets
import string
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MANAGER_NAME = "shoal-manager"  # the server name every manager certificate carries
ROLES = ("manager", "worker", "admin")
DEFAULT_VALIDITY = dt.timedelta(days=90)
_B36 = string.digits + string.ascii_lowercase


class TokenError(ValueError):
    """A join token that is not of the shape SHOAL-1-<digest>-<secret>."""


def _b36(data: bytes, width: int) -> str:
    n = int.from_bytes(data, "big")
    out = []
    for _ in range(width):
        n, r = divmod(n, 36)
        out.append(_B36[r])
    return "".join(reversed(out))


def ca_digest(cert_pem: bytes) -> str:
    """The digest of a CA certificate as it appears in a join token (sha256 of the DER, base 36)."""
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    return _b36(hashlib.sha256(der).digest(), 50)


def make_token(digest: str) -> str:
    return f"SHOAL-1-{digest}-{''.join(secrets.choice(_B36) for _ in range(25))}"


def parse_token(token: str) -> tuple[str, str]:
    """(CA digest, secret) of a join token."""
    parts = token.strip().split("-")
    if len(parts) != 4 or parts[0] != "SHOAL" or parts[1] != "1" or len(parts[2]) != 50 or len(parts[3]) != 25:
        raise TokenError("invalid join token: expected SHOAL-1-<digest>-<secret> as printed by `shoal join-token`")
    return parts[2], parts[3]


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def load_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def make_csr(key: ec.EllipticCurvePrivateKey) -> bytes:
    """A CSR with no subject to speak of: the CA decides the node id and role."""
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shoal-node")]))
    return csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def new_ca(common_name: str = "shoal-root-ca", years: int = 20) -> tuple[bytes, bytes]:
    """A fresh self-signed EC P-256 CA: (cert PEM, key PEM)."""
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)


def sign(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    public_key: ec.EllipticCurvePublicKey,
    node_id: str,
    role: str,
    cluster_id: str,
    validity: dt.timedelta = DEFAULT_VALIDITY,
    not_before: dt.datetime | None = None,
) -> bytes:
    """A certificate for ``public_key`` with CN=node id, OU=role, O=cluster id."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    ca = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = load_key(ca_key_pem)
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster_id),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
            x509.NameAttribute(NameOID.COMMON_NAME, node_id),
        ]
    )
    names: list[x509.GeneralName] = [x509.DNSName(f"shoal-{role}"), x509.DNSName(node_id)]  # shoal-manager for managers
    return leaf(ca, ca_key, subject, public_key, names, server=role == "manager", start=start, validity=validity)


def leaf(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    names: list[x509.GeneralName],
    server: bool,
    start: dt.datetime,
    validity: dt.timedelta,
) -> bytes:
    """An end-entity certificate (PEM) signed by ``ca``: client auth, plus server auth when ``server``,
    for the subject alternative ``names`` (duplicates dropped). The cluster's and etcd's certificates both."""
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(dict.fromkeys(names))), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def csr_public_key(csr_pem: bytes) -> ec.EllipticCurvePublicKey:
    """The key of a CSR whose signature checks out (ValueError otherwise)."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise ValueError(f"malformed certificate signing request: {exc}") from None
    if not csr.is_signature_valid:
        raise ValueError("certificate signing request has a bad signature")
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("certificate signing request must carry an EC key")
    return key


@dataclass(frozen=True)
class CertInfo:
    node_id: str
    role: str
    cluster_id: str
    not_before: dt.datetime
    not_after: dt.datetime
    serial: int = 0


def cert_info(cert_pem: bytes) -> CertInfo:
    c = x509.load_pem_x509_certificate(cert_pem)

    def attr(oid: x509.ObjectIdentifier) -> str:
        v = c.subject.get_attributes_for_oid(oid)
        return str(v[0].value) if v else ""

    return CertInfo(
        attr(NameOID.COMMON_NAME), attr(NameOID.ORGANIZATIONAL_UNIT_NAME), attr(NameOID.ORGANIZATION_NAME), c.not_valid_before_utc, c.not_valid_after_utc, c.serial_number
    )


def renew_at(info: CertInfo, rng: random.Random | None = None) -> dt.datetime:
    """When to renew: a random point between 50% and 80% of the certificate's life (Swarm's rule)."""
    life = info.not_after - info.not_before
    frac = (rng or random).uniform(0.5, 0.8)
    return info.not_before + life * frac


def matches_key(cert_pem: bytes, key_pem_bytes: bytes) -> bool:
    c = x509.load_pem_x509_certificate(cert_pem)
    pub = load_key(key_pem_bytes).public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return c.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == pub


# ---- the join identity -------------------------------------------------------------------------
# grpc's Python server either requires and verifies a client certificate or never asks for one, so
# a node that has no certificate yet could not reach the mutual-TLS port. It presents a throwaway
# "join" certificate instead, signed by a join CA whose key anyone holding the token can derive
# from the CA digest. That key is no secret and grants nothing: a join certificate may only call
# Register, which still checks the token's secret; every other call needs a cluster certificate.
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # order of P-256
JOIN_ROLE = "join"


def _join_key(digest: str) -> ec.EllipticCurvePrivateKey:
    seed = int.from_bytes(hashlib.sha256(b"shoal-join-ca\0" + digest.encode()).digest(), "big")
    return ec.derive_private_key(seed % (_N - 1) + 1, ec.SECP256R1())


_FIXED = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def join_ca(digest: str) -> bytes:
    """The join CA certificate for a cluster: same subject and key on both sides (the signature varies)."""
    key = _join_key(digest)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"shoal-join-ca-{digest[:16]}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int(digest[:20], 36) or 1)
        .not_valid_before(_FIXED)
        .not_valid_after(_FIXED + dt.timedelta(days=365 * 100))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def join_cert(digest: str) -> tuple[bytes, bytes]:
    """A client certificate good only for joining: (cert PEM, key PEM)."""
    ca = x509.load_pem_x509_certificate(join_ca(digest))
    key = new_key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, JOIN_ROLE), x509.NameAttribute(NameOID.COMMON_NAME, "joining-node")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(_join_key(digest), hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)


def issued_by(cert_pem: bytes, ca_pem: bytes) -> bool:
    """Whether ``cert_pem`` carries a valid signature of the CA ``ca_pem``."""
    try:
        x509.load_pem_x509_certificate(cert_pem).verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
        return True
    except (ValueError, TypeError, Exception):  # InvalidSignature is not a ValueError
        return False
