"""Exploit (issue 11, High 3): etcd held both join tokens in clear, so reading etcd was enough to join as a manager.

Now etcd keeps a SHA-256 hash of each token (a join is checked against it in constant time) and the
pair sealed with a key derived from the KEK, which etcd never holds; any manager can still show them
(``shoal join-token``). The test reads every key shoal wrote, raw, the way an intruder with etcd
access would, and looks for the tokens' secrets.
"""

from __future__ import annotations

import pytest

from shoal import tls
from shoal.manager import sealing
from shoal.manager.store import objects
from shoal.manager.store.writes import Writer
from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb
from tests.fixtures.cluster import Cluster

pytestmark = pytest.mark.etcd


async def _everything_in_etcd(c: Cluster) -> bytes:
    rng = await c.manager.store.range("/")
    return b"".join(kv.key.encode() + kv.value for kv in rng.kvs)


def _secrets(c: pb.Cluster) -> list[bytes]:
    return [tls.parse_token(t)[1].encode() for t in (c.worker_token, c.manager_token)]


async def test_no_join_token_secret_is_readable_in_etcd(cluster):
    shown = (await cluster.control.GetCluster(cpb.GetClusterRequest())).cluster
    assert shown.worker_token and shown.manager_token, "join-token can still show both"
    raw = await _everything_in_etcd(cluster)
    for secret in _secrets(shown):
        assert secret not in raw, "a join token secret is stored in clear in etcd"
    stored = await objects.cluster.get(cluster.manager.store, "")
    assert stored is not None and not stored.obj.worker_token and not stored.obj.manager_token
    assert sealing.token_matches(shown.manager_token, stored.obj.manager_token_hash)


async def test_a_rotated_token_is_shown_but_not_stored(cluster):
    before = (await cluster.control.GetCluster(cpb.GetClusterRequest())).cluster.manager_token
    rotated = (await cluster.control.RotateJoinToken(cpb.RotateJoinTokenRequest(role="manager"))).cluster
    again = (await cluster.control.GetCluster(cpb.GetClusterRequest())).cluster
    assert again.manager_token == rotated.manager_token != before
    raw = await _everything_in_etcd(cluster)
    assert tls.parse_token(rotated.manager_token)[1].encode() not in raw
    m = await cluster.add_agent("m2", token=rotated.manager_token)
    assert m.creds.info().role == "manager"


async def test_clear_tokens_of_an_older_cluster_are_hashed_at_the_next_start(tmp_path, etcd_store, etcd_server):
    first = Cluster(tmp_path / "a", etcd_server.endpoint, etcd_server.tls)
    await first.start()
    kek, digest = first.manager.ca.kek, first.manager.ca.digest
    await first.stop()
    old_w, old_m = tls.make_token(digest), tls.make_token(digest)

    def legacy(c: pb.Cluster | None) -> pb.Cluster:
        assert c is not None
        c.Clear()
        c.id, c.ca_digest, c.worker_token, c.manager_token = "legacy", digest, old_w, old_m
        return c

    await objects.cluster.update_retrying(Writer(etcd_store), "", legacy)  # as a cluster made before hashing was
    again = Cluster(tmp_path / "a", etcd_server.endpoint, etcd_server.tls)
    again.manager.cfg.ca_kek = kek
    await again.start()
    try:
        assert tls.parse_token(old_m)[1].encode() not in await _everything_in_etcd(again)
        w = await again.add_agent("w1", token=old_w)  # the tokens people hold keep working
        assert w.creds.info().role == "worker"
    finally:
        await again.stop()
