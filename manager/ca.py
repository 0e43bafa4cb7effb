"""The cluster CA: created once in etcd, its key sealed with a key each manager keeps on disk.

``RootCA`` in etcd holds the CA certificate and its private key encrypted with AES-256-GCM under a
key-encryption key (KEK). The KEK never goes into etcd: the first manager writes it to
``<data-dir>/certificates/ca.kek`` (0600), and a manager joining later receives it in its Register
response over mutual TLS (only callers holding the manager token or a manager certificate get it).
So someone who can read etcd alone cannot mint certificates.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shoal import log, tls
from shoal.certfiles import CertFiles, write_private
from shoal.manager.store import keys, objects
from shoal.manager.store.base import Store
from shoal.manager.store.writes import Conflict, Writer
from shoal.proto import types_pb2 as pb

_log = log.get(__name__)
ROOT_CA = keys.ROOT_CA


class CAError(Exception):
    """The CA cannot be loaded or created; the message says what to do."""


def seal(kek: bytes, data: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(kek).encrypt(nonce, data, b"shoal-root-ca")


def unseal(kek: bytes, blob: bytes) -> bytes:
    try:
        return AESGCM(kek).decrypt(blob[:12], blob[12:], b"shoal-root-ca")
    except Exception:
        raise CAError("the CA key in etcd cannot be unsealed with this manager's ca.kek (a data dir from another cluster?)") from None


@dataclass
class CertificateAuthority:
    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    kek: bytes = field(repr=False)
    digest: str = ""
    join_ca_pem: bytes = b""

    def __post_init__(self) -> None:
        self.digest = tls.ca_digest(self.cert_pem)
        self.join_ca_pem = tls.join_ca(self.digest)

    def issue(self, public_key: ec.EllipticCurvePublicKey, node_id: str, role: str, cluster_id: str, validity: dt.timedelta = tls.DEFAULT_VALIDITY) -> bytes:
        return tls.sign(self.cert_pem, self.key_pem, public_key, node_id, role, cluster_id, validity)

    def issue_files(self, files: CertFiles, node_id: str, role: str, cluster_id: str, validity: dt.timedelta = tls.DEFAULT_VALIDITY) -> None:
        """Sign a fresh key for ``node_id`` locally and write it to ``files``."""
        key = tls.new_key()
        files.save(self.issue(key.public_key(), node_id, role, cluster_id, validity), tls.key_pem(key), self.cert_pem)


def kek_path(certs_dir: Path) -> Path:
    return certs_dir / "ca.kek"


async def ensure(store: Store, certs_dir: Path, kek: bytes | None = None) -> CertificateAuthority:
    """The cluster CA, created (with a fresh KEK in ``certs_dir``) when the cluster has none.

    ``kek`` is the key a joining manager received; otherwise it is read from ``certs_dir``.
    """
    kpath = kek_path(certs_dir)
    if kek is None and kpath.exists():
        kek = kpath.read_bytes()
    got = await objects.root_ca.get(store, "")
    if got is None:
        if kek is None:
            kek = AESGCM.generate_key(256)
        cert, key = tls.new_ca()
        try:
            await Writer(store).apply(objects.root_ca.create(pb.RootCA(cert_pem=cert, key_sealed=seal(kek, key))))
        except Conflict:  # another manager created it first: use that one
            got = await objects.root_ca.get(store, "")
            assert got is not None
        else:
            write_private(kpath, kek)
            _log.info("created the cluster CA", digest=tls.ca_digest(cert)[:12])
            return CertificateAuthority(cert, key, kek)
    root = got.obj
    if kek is None:
        raise CAError("this cluster already has a CA and this manager does not hold its key: start it with --join ADDR --token <manager token>")
    ca = CertificateAuthority(root.cert_pem, unseal(kek, root.key_sealed), kek)
    if not kpath.exists():
        write_private(kpath, kek)
    return ca


def needs_new_cert(files: CertFiles, ca: CertificateAuthority, node_id: str, role: str) -> bool:
    """True when ``files`` hold no usable certificate of ``node_id``/``role`` from this CA."""
    if not files.exists():
        return True
    cert, key, _ca = files.load()
    info = tls.cert_info(cert)
    now = dt.datetime.now(dt.UTC)
    return (
        info.node_id != node_id
        or info.role != role
        or info.not_after <= now
        or not tls.issued_by(cert, ca.cert_pem)
        or not tls.matches_key(cert, key)
    )
