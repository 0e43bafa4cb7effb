"""The cluster object: created once by the first manager, holding the join tokens.

Tokens have Swarm's shape, ``SHOAL-1-<digest>-<secret>``: the digest names the cluster (the CA
certificate's digest once the cluster CA exists), the secret is what authorizes a join.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import time

from shoal.ids import new_id
from shoal.manager import keys
from shoal.manager.store.base import Compare, Put, Store
from shoal.proto import types_pb2 as pb

_B36 = string.digits + string.ascii_lowercase


def _b36(data: bytes, width: int) -> str:
    n = int.from_bytes(data, "big")
    out = []
    for _ in range(width):
        n, r = divmod(n, 36)
        out.append(_B36[r])
    return "".join(reversed(out))


def make_token(cluster_id: str) -> str:
    digest = _b36(hashlib.sha256(cluster_id.encode()).digest(), 50)
    secret = "".join(secrets.choice(_B36) for _ in range(25))
    return f"SHOAL-1-{digest}-{secret}"


def token_roles(cluster: pb.Cluster) -> dict[str, int]:
    return {cluster.worker_token: pb.NodeSpec.WORKER, cluster.manager_token: pb.NodeSpec.MANAGER}


async def ensure(store: Store) -> pb.Cluster:
    """The cluster object, created with fresh tokens if this is the first manager."""
    kv = await store.get(keys.CLUSTER)
    if kv is None:
        cid = new_id()
        c = pb.Cluster(id=cid, worker_token=make_token(cid), manager_token=make_token(cid), created_at_ns=time.time_ns())
        res = await store.txn([Compare(keys.CLUSTER, "create", "==", 0)], [Put(keys.CLUSTER, keys.encode(c))])
        if res.succeeded:
            return c
        kv = await store.get(keys.CLUSTER)
        assert kv is not None
    c = pb.Cluster()
    c.ParseFromString(kv.value)
    return c
