"""The cluster data key, and secrets encrypted with it before they are written to etcd.

etcd never holds a secret in clear. Each secret's data is sealed with AES-256-GCM under the cluster
*data key*, with the secret's id as associated data (a sealed blob copied onto another secret does not
open). The data key itself lives in etcd (``/shoal/v1/ca/datakey``) sealed like the CA key, under a key
derived from the KEK that each manager keeps in its data dir and etcd never sees: reading etcd alone
(a stolen disk, an etcd backup, a client that got past etcd's TLS) yields no secret. Managers unseal the
data key once at start and hold it in memory; the control API seals with it, the dispatcher opens with
it when a node needs a secret for a task it runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shoal import log
from shoal.manager.sealing import SealError, subkey
from shoal.manager.store import objects
from shoal.manager.store.base import Store
from shoal.manager.store.writes import Conflict, Writer
from shoal.proto import types_pb2 as pb

_log = log.get(__name__)
_DATAKEY_AAD = b"shoal-data-key"


OVERHEAD = 12 + 16  # a sealed blob is the nonce, the data and AES-GCM's tag: its clear size is len - OVERHEAD


def _seal(key: bytes, data: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, data, aad)


def _open(key: bytes, blob: bytes, aad: bytes) -> bytes:
    return AESGCM(key).decrypt(blob[:12], blob[12:], aad)


@dataclass(frozen=True)
class SecretBox:
    """Seals and opens secret data with the cluster data key (held in memory only)."""

    key: bytes = field(repr=False)

    def seal(self, secret_id: str, data: bytes) -> bytes:
        return _seal(self.key, data, b"shoal-secret\0" + secret_id.encode())

    def open(self, secret_id: str, blob: bytes) -> bytes:
        """The clear data; SealError when the blob was not sealed for this secret with this key."""
        try:
            return _open(self.key, blob, b"shoal-secret\0" + secret_id.encode())
        except Exception:
            raise SealError(f"secret {secret_id} cannot be opened with the cluster data key") from None


def seal_data_key(kek: bytes, key: bytes) -> pb.DataKey:
    return pb.DataKey(key_sealed=_seal(subkey(kek, "data-key"), key, _DATAKEY_AAD))


def open_data_key(kek: bytes, sealed: pb.DataKey) -> bytes:
    try:
        return _open(subkey(kek, "data-key"), sealed.key_sealed, _DATAKEY_AAD)
    except Exception:
        raise SealError("the cluster data key in etcd cannot be unsealed with this manager's ca.kek") from None


async def ensure(store: Store, kek: bytes) -> SecretBox:
    """The cluster's data key (created, sealed under the KEK, when the cluster has none)."""
    got = await objects.data_key.get(store, "")
    if got is None:
        key = AESGCM.generate_key(256)
        try:
            await Writer(store).apply(objects.data_key.create(seal_data_key(kek, key)))
        except Conflict:  # another manager created it first: use that one
            got = await objects.data_key.get(store, "")
            assert got is not None
        else:
            _log.info("created the cluster data key")
            return SecretBox(key)
    return SecretBox(open_data_key(kek, got.obj))
