"""The cluster object on the store: created once with fresh tokens, kept as hashes and a sealed pair (etcd
never holds a token in clear), revealed only with the KEK, rotated by compare-and-swap, converted from
older shapes at start; and which etcd endpoints a node can reach for a promotion.
"""

from __future__ import annotations

import os

import pytest

from shoal import tls
from shoal.manager import cluster, sealing
from shoal.manager.ipam.subnets import DEFAULT_POOL
from shoal.manager.store import objects
from shoal.manager.store.memory import MemoryStore
from shoal.manager.store.writes import Writer
from shoal.proto import types_pb2 as pb

KEK = os.urandom(32)
DIGEST = tls.ca_digest(tls.new_ca()[0])


@pytest.fixture
async def store():
    s = MemoryStore()
    yield s
    await s.close()


async def raw(store: MemoryStore) -> bytes:
    return b"".join(kv.value for kv in (await store.range("/")).kvs)


async def test_the_first_manager_creates_the_cluster_with_two_fresh_tokens(store):
    c, created = await cluster.ensure(store, DIGEST, KEK)
    assert created and c.ca_digest == DIGEST and c.default_addr_pool == DEFAULT_POOL and len(c.id) == 25
    assert c.worker_token != c.manager_token
    for token in (c.worker_token, c.manager_token):
        digest, secret = tls.parse_token(token)
        assert digest == DIGEST and len(secret) == 25


async def test_a_second_manager_gets_the_same_cluster_and_does_not_print_tokens(store):
    first, _ = await cluster.ensure(store, DIGEST, KEK)
    again, created = await cluster.ensure(store, DIGEST, KEK)
    assert not created
    assert (again.id, again.worker_token, again.manager_token) == (first.id, first.worker_token, first.manager_token)


async def test_no_token_is_readable_in_the_store(store):
    c, _ = await cluster.ensure(store, DIGEST, KEK, default_addr_pool="10.99.0.0/16")
    stored = await raw(store)
    for token in (c.worker_token, c.manager_token):
        assert tls.parse_token(token)[1].encode() not in stored
    obj = (await objects.cluster.get(store, "")).obj
    assert not obj.worker_token and not obj.manager_token
    assert sealing.token_matches(c.worker_token, obj.worker_token_hash)
    assert sealing.token_matches(c.manager_token, obj.manager_token_hash)
    assert obj.default_addr_pool == "10.99.0.0/16"


async def test_load_reveals_the_tokens_only_with_the_kek(store):
    c, _ = await cluster.ensure(store, DIGEST, KEK)
    assert (await cluster.load(store, KEK)).manager_token == c.manager_token
    with pytest.raises(Exception):  # noqa: B017  (the sealed pair cannot be opened: any error will do, no tokens)
        await cluster.load(store, os.urandom(32))


async def test_load_of_a_store_without_a_cluster_is_none(store):
    assert await cluster.load(store, KEK) is None


async def test_rotating_a_token_replaces_only_its_secret_and_the_old_one_stops_matching(store):
    c, _ = await cluster.ensure(store, DIGEST, KEK)
    rotated = await cluster.rotate(store, "worker", KEK)
    assert rotated.worker_token != c.worker_token and rotated.manager_token == c.manager_token
    assert tls.parse_token(rotated.worker_token)[0] == DIGEST, "the same CA digest"
    obj = (await objects.cluster.get(store, "")).obj
    assert not sealing.token_matches(c.worker_token, obj.worker_token_hash)
    assert sealing.token_matches(rotated.worker_token, obj.worker_token_hash)
    assert (await cluster.load(store, KEK)).worker_token == rotated.worker_token, "every manager sees the rotation"


async def test_rotating_an_unknown_role_or_before_init_is_one_clear_error(store):
    with pytest.raises(cluster.ClusterError, match="unknown role 'admin': use worker or manager"):
        await cluster.rotate(store, "admin", KEK)
    with pytest.raises(cluster.ClusterError, match="not initialised"):
        await cluster.rotate(store, "worker", KEK)


async def test_a_cluster_object_with_clear_tokens_is_converted_keeping_them(store):
    old = pb.Cluster(id="c" * 25, ca_digest=DIGEST, default_addr_pool=DEFAULT_POOL,
                     worker_token=tls.make_token(DIGEST), manager_token=tls.make_token(DIGEST))
    await Writer(store).apply(objects.cluster.create(old))
    c, created = await cluster.ensure(store, DIGEST, KEK)
    assert not created and (c.worker_token, c.manager_token) == (old.worker_token, old.manager_token)
    assert tls.parse_token(old.worker_token)[1].encode() not in await raw(store), "stored safely now"


async def test_a_cluster_from_before_networking_gets_the_default_pool(store):
    c0, _ = await cluster.ensure(store, DIGEST, KEK)

    def strip(c: pb.Cluster | None) -> pb.Cluster | None:
        assert c is not None
        c.default_addr_pool = ""
        return c

    await objects.cluster.update_retrying(Writer(store), "", strip)
    c, _ = await cluster.ensure(store, DIGEST, KEK)
    assert c.default_addr_pool == DEFAULT_POOL and c.worker_token == c0.worker_token


async def test_a_new_ca_re_issues_both_tokens_for_its_digest(store):
    c0, _ = await cluster.ensure(store, DIGEST, KEK)
    other = tls.ca_digest(tls.new_ca()[0])
    c, created = await cluster.ensure(store, other, KEK)
    assert not created and c.ca_digest == other
    assert tls.parse_token(c.worker_token)[0] == other and c.worker_token != c0.worker_token


# -- etcd endpoints a promoted node can reach ------------------------------------------------------------------


def status(*endpoints: str) -> pb.ManagerStatus:
    return pb.ManagerStatus(etcd_endpoints=list(endpoints))


def test_a_remote_node_gets_only_the_non_loopback_endpoints():
    statuses = [status("https://10.0.0.1:2379", "https://127.0.0.1:2379"), status("https://10.0.0.2:2379")]
    assert cluster.usable_etcd_endpoints(statuses, "ipv4:10.0.0.9:51000") == ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]


def test_a_node_on_the_managers_host_may_use_loopback_too():
    statuses = [status("https://127.0.0.1:2379"), status("https://localhost:2379")]
    assert cluster.usable_etcd_endpoints(statuses, "ipv4:127.0.0.1:40000") == ["https://127.0.0.1:2379", "https://localhost:2379"]


def test_endpoints_are_listed_once_in_the_managers_order():
    statuses = [status("https://10.0.0.1:2379"), status("https://10.0.0.1:2379", "https://10.0.0.3:2379")]
    assert cluster.usable_etcd_endpoints(statuses, "10.0.0.9") == ["https://10.0.0.1:2379", "https://10.0.0.3:2379"]


def test_ipv6_peers_and_endpoints():
    statuses = [status("https://[::1]:2379", "https://[fd00::1]:2379")]
    assert cluster.usable_etcd_endpoints(statuses, "ipv6:[fd00::9]:5000") == ["https://[fd00::1]:2379"]
    assert cluster.usable_etcd_endpoints(statuses, "ipv6:[::1]:5000") == ["https://[::1]:2379", "https://[fd00::1]:2379"]


def test_an_embedded_etcd_leaves_nothing_to_promote_with():
    assert cluster.usable_etcd_endpoints([status()], "10.0.0.9") == []
    assert "cannot promote node w1" in cluster.unreachable_etcd_error("w1")
