"""The cluster object: created once by the first manager, holding the join tokens (hashed and sealed).

Tokens have Swarm's shape, ``SHOAL-1-<digest>-<secret>``: the digest is the cluster CA
certificate's, so a joining node can check it talks to the right cluster before it trusts it; the
secret is what authorizes a join (worker or manager). Rotating a token replaces its secret; the old
token stops working at once (the dispatcher re-reads the cluster object on every join).

etcd never holds a token in clear: it keeps each token's SHA-256 hash (what a join is checked
against) and the pair sealed under a key derived from the KEK (``sealing``), so every manager, and
no one who only reads etcd, can show them (``shoal join-token``), also after a rotation made on
another manager. The clear fields of ``pb.Cluster`` are filled only in a manager's memory
(``reveal``); a cluster object written before this (clear tokens) is converted at the next start.
"""

from __future__ import annotations

import time

from shoal import tls
from shoal.ids import new_id
from shoal.manager import sealing
from shoal.manager.ipam.subnets import DEFAULT_POOL
from shoal.manager.store import objects
from shoal.manager.store.base import Store
from shoal.manager.store.writes import Writer
from shoal.proto import types_pb2 as pb

ROLES = {"worker": pb.NodeSpec.WORKER, "manager": pb.NodeSpec.MANAGER}


class ClusterError(Exception):
    """A bad request about the cluster object (unknown role, ...)."""


def _store_tokens(c: pb.Cluster, kek: bytes, worker: str, manager: str) -> None:
    """Keep ``worker``/``manager`` in ``c`` as etcd may see them: hashes and the sealed pair, no clear text."""
    c.worker_token_hash, c.manager_token_hash = sealing.token_hash(worker), sealing.token_hash(manager)
    c.tokens_sealed = sealing.seal_tokens(kek, worker, manager)
    c.ClearField("worker_token")
    c.ClearField("manager_token")


def reveal(c: pb.Cluster, kek: bytes) -> pb.Cluster:
    """A copy of ``c`` with the clear tokens filled in (for this manager's memory and admins, never etcd)."""
    out = pb.Cluster()
    out.CopyFrom(c)
    if c.tokens_sealed:
        out.worker_token, out.manager_token = sealing.unseal_tokens(kek, c.tokens_sealed)
    return out


async def load(store: Store, kek: bytes) -> pb.Cluster | None:
    """The cluster object with its tokens revealed."""
    got = await objects.cluster.get(store, "")
    return reveal(got.obj, kek) if got is not None else None


async def ensure(
    store: Store, ca_digest: str, kek: bytes, default_addr_pool: str = DEFAULT_POOL, mask_length: int = 0
) -> tuple[pb.Cluster, bool]:
    """The cluster object (tokens revealed), created with fresh tokens (and its address pool) if this is the
    first manager; and whether this call created it (only then does the manager print the tokens)."""
    created = False

    def fresh(c: pb.Cluster | None) -> pb.Cluster | None:
        nonlocal created
        created = c is None  # a retry after a lost race sees the winner's object
        if c is None:
            c = pb.Cluster(id=new_id(), created_at_ns=time.time_ns(), ca_digest=ca_digest, default_addr_pool=default_addr_pool,
                           default_addr_pool_mask_length=mask_length)
            _store_tokens(c, kek, tls.make_token(ca_digest), tls.make_token(ca_digest))
            return c
        changed = not c.default_addr_pool
        if changed:  # a cluster from before networking: the default pool
            c.default_addr_pool = DEFAULT_POOL
        if c.ca_digest != ca_digest:
            # a cluster object from before the CA existed (or a CA rotation): re-issue tokens for this CA
            c.ca_digest = ca_digest
            _store_tokens(c, kek, tls.make_token(ca_digest), tls.make_token(ca_digest))
            return c
        if c.worker_token or c.manager_token:  # written before tokens were hashed: keep them, stored safely
            _store_tokens(c, kek, c.worker_token, c.manager_token)
            return c
        return c if changed else None

    c = await objects.cluster.update_retrying(Writer(store), "", fresh)
    assert c is not None
    return reveal(c, kek), created


async def rotate(store: Store, role: str, kek: bytes) -> pb.Cluster:
    """Replace the ``role`` token's secret (compare-and-swap; retried on a concurrent change); tokens revealed."""
    if role not in ROLES:
        raise ClusterError(f"unknown role {role!r}: use worker or manager")

    def rotated(c: pb.Cluster | None) -> pb.Cluster:
        if c is None:
            raise ClusterError("the cluster is not initialised")
        current = reveal(c, kek)
        setattr(current, f"{role}_token", tls.make_token(c.ca_digest))
        _store_tokens(c, kek, current.worker_token, current.manager_token)
        return c

    c = await objects.cluster.update_retrying(Writer(store), "", rotated)
    assert c is not None
    return reveal(c, kek)


def _host(endpoint: str) -> str:
    """The host of an etcd endpoint (``http://10.0.0.1:2379`` -> ``10.0.0.1``)."""
    rest = endpoint.split("://", 1)[-1].split("/", 1)[0]
    return rest.rpartition(":")[0].strip("[]") if ":" in rest else rest


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def usable_etcd_endpoints(statuses: list[pb.ManagerStatus], node_addr: str) -> list[str]:
    """The etcd endpoints the managers use that a node at ``node_addr`` can reach too. Pure.

    Managers record only the endpoints given with ``--etcd`` (an embedded etcd lives and dies with
    its manager). A loopback endpoint serves only its host: it counts for a node whose address is
    loopback as well (it runs on that host), never for a node on another host.
    """
    host = node_addr.removeprefix("ipv4:").removeprefix("ipv6:")
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    local = _loopback(host)
    out = [e for st in statuses for e in st.etcd_endpoints if local or not _loopback(_host(e))]
    return list(dict.fromkeys(out))


def unreachable_etcd_error(node_ref: str) -> str:
    return (
        f"cannot promote node {node_ref}: the cluster's etcd is only reachable on this host (embedded etcd, or loopback "
        "endpoints and the node is on another host); run the managers on an etcd cluster (--etcd) to promote workers"
    )
