"""Exploit (issue 11, Medium): Register was open to the network without limits.

Anyone can build a join certificate (every handshake hands out the CA certificate), and each
Register read the cluster object from etcd and, with a CSR, signed a certificate. One host could
keep a manager busy without end. Now: a token bucket per peer host for join-certificate callers,
the cluster object cached, and a bound on registrations in flight.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from shoal import tls
from shoal.manager.dispatcher.admission import Admission, peer_host
from shoal.proto import dispatcher_pb2 as dpb
from tests.fixtures.dispatcher import Aborted, Harness


@pytest.fixture
async def h():
    async with Harness(heartbeat_period=0.5) as harness:
        yield harness


def _bad_join(h: Harness) -> dpb.RegisterRequest:
    return dpb.RegisterRequest(token=tls.make_token(h.ca.ca.digest), csr=tls.make_csr(tls.new_key()))


def _count_cluster_reads(h: Harness) -> list[int]:
    reads = [0]
    inner = h.dispatcher.registrar._read_cluster

    async def counted():
        reads[0] += 1
        return await inner()

    h.dispatcher.registrar._read_cluster = counted
    return reads


async def test_a_flood_of_joins_from_one_host_is_cut_off_after_the_burst(h: Harness):
    h.dispatcher.registrar.admission = Admission(rate=10.0, burst=40, clock=lambda: 0.0)  # the defaults; time stands still
    reads = _count_cluster_reads(h)
    codes = []
    for _ in range(200):
        try:
            await h.dispatcher.Register(_bad_join(h), h.ca.joining("ipv4:10.0.0.66:5000"))
        except Aborted as exc:
            codes.append(exc.code)
    limited = codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert limited == 160, f"{limited} of 200 attempts were refused by the rate limit, not all beyond the burst of 40"
    assert reads[0] <= 2 * (200 - limited), "refused attempts cost no etcd read"
    # another host is not punished for it
    with pytest.raises(Aborted) as err:
        await h.dispatcher.Register(_bad_join(h), h.ca.joining("ipv4:10.0.0.67:5000"))
    assert err.value.code == grpc.StatusCode.UNAUTHENTICATED


async def test_the_cluster_object_is_not_read_for_every_registration(h: Harness):
    reads = _count_cluster_reads(h)
    for i in range(30):
        await h.add_node(f"n{i}")
    for i in range(30):
        await h.dispatcher.Register(dpb.RegisterRequest(node_id=f"n{i}"), h.ca.node(f"n{i}"))
    assert reads[0] <= 2


async def test_registrations_in_flight_are_bounded(h: Harness):
    h.dispatcher.registrar.admission = Admission(concurrent=4, max_waiting=10)
    inflight, peak = [0], [0]
    inner = h.dispatcher.registrar._register

    async def slow(*a, **k):
        inflight[0] += 1
        peak[0] = max(peak[0], inflight[0])
        try:
            await asyncio.sleep(0.05)
            return await inner(*a, **k)
        finally:
            inflight[0] -= 1

    h.dispatcher.registrar._register = slow
    for i in range(30):
        await h.add_node(f"c{i}")
    results = await asyncio.gather(
        *(h.dispatcher.Register(dpb.RegisterRequest(node_id=f"c{i}"), h.ca.node(f"c{i}")) for i in range(30)), return_exceptions=True
    )
    assert peak[0] <= 4
    busy = [r for r in results if isinstance(r, Aborted)]
    assert busy and all(r.code == grpc.StatusCode.RESOURCE_EXHAUSTED for r in busy), "beyond the queue: told to retry"
    assert len(results) - len(busy) >= 14


def test_the_bucket_refills_with_time():
    now = [0.0]
    a = Admission(rate=2.0, burst=3, clock=lambda: now[0])
    assert [a.allow("ipv4:10.1.1.1:1") for _ in range(4)] == [True, True, True, False]
    now[0] += 1.0
    assert [a.allow("ipv4:10.1.1.1:2") for _ in range(3)] == [True, True, False]
    assert all(a.allow("ipv4:127.0.0.1:9") for _ in range(100)), "loopback callers are on the manager's host"


def test_the_peer_table_stays_bounded():
    now = [0.0]
    a = Admission(rate=1.0, burst=1, max_peers=100, clock=lambda: now[0])
    for i in range(1000):
        a.allow(f"ipv4:10.2.{i // 250}.{i % 250}:1")
    assert len(a.buckets) <= 100


@pytest.mark.parametrize(("peer", "host"), [("ipv4:10.0.0.9:40500", "10.0.0.9"), ("ipv6:[::1]:5", "::1"), ("unix:/run/x", "unix:/run/x")])
def test_peer_host(peer, host):
    assert peer_host(peer) == host
