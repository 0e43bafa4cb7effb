"""What etcd must not be able to forge or reveal: role grants, join tokens. Keyed from the CA key's KEK.

etcd holds the cluster's state but never the KEK (each manager keeps it in its data dir), so keys
derived from the KEK let the managers protect what a bare etcd reader or writer must not use:

- a **role grant** (who changed a node's role through the control API, and when) carries an
  HMAC; Register issues a manager certificate to a node only when its record's grant checks out,
  so writing ``role: MANAGER`` into etcd changes no certificate;
- **join tokens** are stored as SHA-256 hashes (a join is checked against the hash, in constant
  time) plus the clear pair sealed with AES-256-GCM, so any manager (not etcd) can show them
  (``shoal join-token``), including after a rotation made on another manager.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shoal.proto import types_pb2 as pb


class SealError(Exception):
    """Sealed data that this manager's KEK cannot open (a data dir of another cluster?)."""


def subkey(kek: bytes, purpose: str) -> bytes:
    """A key for one purpose, derived from the KEK (HMAC-SHA256 as a KDF): one key never serves two uses."""
    return hmac.new(kek, b"shoal-subkey\0" + purpose.encode(), hashlib.sha256).digest()


def _grant_mac(kek: bytes, node_id: str, role: int, by: str, at_ns: int) -> bytes:
    msg = "\0".join((node_id, str(int(role)), by, str(at_ns))).encode()
    return hmac.new(subkey(kek, "role-grant"), msg, hashlib.sha256).digest()


def grant(kek: bytes, node_id: str, role: int, by: str, at_ns: int | None = None) -> pb.RoleGrant:
    """The record of an admin's role change of ``node_id``, with its MAC."""
    at = time.time_ns() if at_ns is None else at_ns
    return pb.RoleGrant(role=role, by=by, at_ns=at, mac=_grant_mac(kek, node_id, role, by, at))  # type: ignore[arg-type]  # protobuf stubs type enum fields as Role; the role arrives as its int value


def grant_valid(kek: bytes, node_id: str, g: pb.RoleGrant, role: int) -> bool:
    """Whether ``g`` grants ``role`` to ``node_id`` and was made by a holder of the KEK."""
    if g.role != role or not g.mac:
        return False
    return hmac.compare_digest(g.mac, _grant_mac(kek, node_id, g.role, g.by, g.at_ns))


def token_hash(token: str) -> bytes:
    """What etcd keeps of a join token. The secret has ~129 random bits: a plain hash cannot be brute-forced."""
    return hashlib.sha256(token.strip().encode()).digest()


def token_matches(token: str, stored_hash: bytes) -> bool:
    return bool(stored_hash) and hmac.compare_digest(token_hash(token), stored_hash)


def seal_tokens(kek: bytes, worker: str, manager: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(subkey(kek, "join-tokens")).encrypt(
        nonce, f"{worker}\n{manager}".encode(), b"shoal-join-tokens"
    )


def unseal_tokens(kek: bytes, blob: bytes) -> tuple[str, str]:
    """(worker token, manager token) from ``seal_tokens``; SealError when the KEK does not open them."""
    try:
        clear = (
            AESGCM(subkey(kek, "join-tokens")).decrypt(blob[:12], blob[12:], b"shoal-join-tokens").decode()
        )
    except Exception:
        raise SealError("the join tokens in etcd cannot be unsealed with this manager's ca.kek") from None
    worker, _, manager = clear.partition("\n")
    return worker, manager
