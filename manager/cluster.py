"""The cluster object: created once by the first manager, holding the join tokens.

Tokens have Swarm's shape, ``SHOAL-1-<digest>-<secret>``: the digest is the cluster CA
certificate's, so a joining node can check it talks to the right cluster before it trusts it; the
secret is what authorizes a join (worker or manager). Rotating a token replaces its secret; the old
token stops working at once (the dispatcher re-reads the cluster object on a token it does not know).
"""

from __future__ import annotations

import time

from shoal import tls
from shoal.ids import new_id
from shoal.manager.ipam.subnets import DEFAULT_POOL
from shoal.manager.store import objects
from shoal.manager.store.base import Store
from shoal.manager.store.writes import Writer
from shoal.proto import types_pb2 as pb

ROLES = {"worker": pb.NodeSpec.WORKER, "manager": pb.NodeSpec.MANAGER}


class ClusterError(Exception):
    """A bad request about the cluster object (unknown role, ...)."""


def token_roles(cluster: pb.Cluster) -> dict[str, int]:
    return {cluster.worker_token: pb.NodeSpec.WORKER, cluster.manager_token: pb.NodeSpec.MANAGER}


async def load(store: Store) -> pb.Cluster | None:
    got = await objects.cluster.get(store, "")
    return got.obj if got is not None else None


async def ensure(store: Store, ca_digest: str, default_addr_pool: str = DEFAULT_POOL) -> pb.Cluster:
    """The cluster object, created with fresh tokens (and its address pool) if this is the first manager."""

    def fresh(c: pb.Cluster | None) -> pb.Cluster | None:
        if c is None:
            return pb.Cluster(id=new_id(), worker_token=tls.make_token(ca_digest), manager_token=tls.make_token(ca_digest), created_at_ns=time.time_ns(), ca_digest=ca_digest,
                              default_addr_pool=default_addr_pool)
        pooled = not c.default_addr_pool
        if pooled:  # a cluster from before networking: the default pool
            c.default_addr_pool = DEFAULT_POOL
        if c.ca_digest == ca_digest:
            return c if pooled else None
        # a cluster object from before the CA existed (or a CA rotation): re-issue tokens for this CA
        c.ca_digest = ca_digest
        c.worker_token, c.manager_token = tls.make_token(ca_digest), tls.make_token(ca_digest)
        return c

    c = await objects.cluster.update_retrying(Writer(store), "", fresh)
    assert c is not None
    return c


async def rotate(store: Store, role: str) -> pb.Cluster:
    """Replace the ``role`` token's secret (compare-and-swap; retried on a concurrent change)."""
    if role not in ROLES:
        raise ClusterError(f"unknown role {role!r}: use worker or manager")

    def rotated(c: pb.Cluster | None) -> pb.Cluster:
        if c is None:
            raise ClusterError("the cluster is not initialised")
        setattr(c, f"{role}_token", tls.make_token(c.ca_digest))
        return c

    c = await objects.cluster.update_retrying(Writer(store), "", rotated)
    assert c is not None
    return c


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
