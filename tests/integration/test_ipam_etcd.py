"""The address plan on a real etcd: concurrent allocators never hand out an address or subnet twice."""

from __future__ import annotations

import asyncio

import pytest

from shoal.manager.ipam import IpamError
from shoal.manager.ipam.stored import IpamStore
from shoal.manager.store.etcd import connect

pytestmark = pytest.mark.etcd


async def test_two_managers_allocating_at_once_agree(etcd_store, etcd_server):
    other = await connect([etcd_server.endpoint], timeout=5.0, tls=etcd_server.tls)  # a second client, as a second manager has
    try:
        a, b = IpamStore(etcd_store), IpamStore(other)
        await a.update(lambda i: (i.node_subnet("n1"), i.create_network("web")))
        jobs = [(a if n % 2 else b).update(lambda i, n=n: i.network_address("web", f"t{n}")) for n in range(30)]
        jobs += [(b if n % 2 else a).update(lambda i, n=n: i.create_network(f"net{n}")) for n in range(6)]
        got = await asyncio.gather(*jobs)
        addresses, networks = got[:30], got[30:]
        assert len({str(x) for x in addresses}) == 30
        assert len({n.subnet for n in networks}) == 6 and len({n.vxlan_id for n in networks}) == 6
        ipam, _ = await b.read()
        assert len(ipam.network("web").addresses.owners) == 30 and len(ipam.networks) == 7
    finally:
        await other.close()


async def test_an_overlapping_subnet_is_refused_and_nothing_is_written(etcd_store):
    ipams = IpamStore(etcd_store)
    await ipams.update(lambda i: i.create_network("web", "10.60.0.0/16"))
    before = (await etcd_store.range("/shoal/v1/ipam/")).kvs
    with pytest.raises(IpamError, match="subnet 10.60.4.0/24 overlaps 10.60.0.0/16 of network 'web'"):
        await ipams.update(lambda i: i.create_network("db", "10.60.4.0/24"))
    assert (await etcd_store.range("/shoal/v1/ipam/")).kvs == before
