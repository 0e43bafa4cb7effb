"""etcd's own TLS: a dedicated CA, member (server and peer) certificates and client certificates.

etcd is part of shoal's trust boundary (it holds every spec, the sealed CA key, the token hashes),
so its clients and peers authenticate with certificates. Why a CA of its own and not the cluster CA:

- bootstrapping: the cluster CA lives (sealed) in etcd, so its key cannot be what etcd needs
  before it can start;
- authority: every node holds a certificate of the cluster CA; etcd (without its RBAC) admits any
  client certificate of a CA it trusts, so trusting the cluster CA would open etcd to every worker.

(``cryptography`` is loaded only to make a certificate: every `shoal --lab` command reads the lab's
state, which names these files, and paid ~35 ms for it.)

An embedded etcd gets a CA, a server certificate for 127.0.0.1 and one client certificate, all in
the manager's data dir, created at its first start. An etcd cluster (the lab's, or one deployed by
hand with ``shoal etcd-certs``) gets the CA once and a certificate per member with its addresses;
the managers share one client certificate, which a promoted worker receives over mutual TLS along
with the CA key's KEK (the same gate). Keys are written 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from shoal.certfiles import write_private

VALIDITY = dt.timedelta(days=365 * 5)


@dataclass(frozen=True)
class EtcdTLS:
    """Where one party's etcd TLS files are: the etcd CA, its certificate and its key."""

    ca: Path
    cert: Path
    key: Path

    def exists(self) -> bool:
        return self.ca.exists() and self.cert.exists() and self.key.exists()

    def load(self) -> tuple[bytes, bytes, bytes]:
        return self.ca.read_bytes(), self.cert.read_bytes(), self.key.read_bytes()

    def save(self, ca: bytes, cert: bytes, key: bytes) -> None:
        """Every file written to a temporary name and renamed into place; the CA only when it differs.

        A running etcd reads the CA file each time it builds a TLS config (its peer round trippers,
        listeners, ...), at moments of its own: a CA file truncated and rewritten beside it once gave a
        starting member an empty trust pool (no error) for its version checks and lease forwarding,
        so every peer's certificate was "signed by unknown authority" for the member's lifetime."""
        if not (self.ca.exists() and self.ca.read_bytes() == ca):
            write_private(self.ca, ca, 0o644)
        write_private(self.key, key)
        write_private(self.cert, cert, 0o644)


def files(directory: Path, name: str) -> EtcdTLS:
    """``<dir>/ca.crt``, ``<dir>/<name>.crt`` and ``<dir>/<name>.key``."""
    return EtcdTLS(directory / "ca.crt", directory / f"{name}.crt", directory / f"{name}.key")


def ensure_ca(directory: Path) -> tuple[bytes, bytes]:
    """The etcd CA in ``directory`` (ca.crt, ca.key 0600), created when missing: (cert PEM, key PEM)."""
    cert, key = directory / "ca.crt", directory / "ca.key"
    if cert.exists() and key.exists():
        return cert.read_bytes(), key.read_bytes()
    from shoal import tls

    directory.mkdir(parents=True, exist_ok=True)
    pem, key_pem = tls.new_ca("shoal-etcd-ca")
    write_private(key, key_pem)
    write_private(cert, pem, 0o644)
    return pem, key_pem


def sign(ca: tuple[bytes, bytes], name: str, addresses: list[str], server: bool) -> tuple[bytes, bytes]:
    """A certificate (and its new key) for ``name``: client auth, plus server auth for ``addresses`` when ``server``."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    from shoal import tls

    ca_cert = x509.load_pem_x509_certificate(ca[0])
    key = tls.new_key()
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    sans: list[x509.GeneralName] = [x509.DNSName(name)]
    for a in addresses:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(a)))
        except ValueError:
            sans.append(x509.DNSName(a))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = tls.leaf(ca_cert, tls.load_key(ca[1]), subject, key.public_key(), sans, server, now, VALIDITY)
    return cert, tls.key_pem(key)


def ensure_pair(directory: Path, name: str, addresses: list[str], server: bool) -> EtcdTLS:
    """``name``'s certificate and key in ``directory`` (with the CA there), issued when missing."""
    out = files(directory, name)
    if not out.exists():
        ca = ensure_ca(directory)
        cert, key = sign(ca, name, addresses, server)
        out.save(ca[0], cert, key)
    return out


def ensure_embedded(directory: Path) -> tuple[EtcdTLS, EtcdTLS]:
    """(server, client) files of a manager's embedded etcd on 127.0.0.1."""
    return ensure_pair(directory, "server", ["127.0.0.1", "localhost"], True), ensure_pair(directory, "client", [], False)


def server_flags(member: EtcdTLS) -> list[str]:
    """etcd's flags for client and peer TLS with certificate authentication, both ways."""
    ca, cert, key = str(member.ca), str(member.cert), str(member.key)
    return [
        "--cert-file", cert, "--key-file", key, "--trusted-ca-file", ca, "--client-cert-auth",
        "--peer-cert-file", cert, "--peer-key-file", key, "--peer-trusted-ca-file", ca, "--peer-client-cert-auth",
    ]  # fmt: skip
