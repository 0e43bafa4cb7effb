"""The address plan in the store: key layout, only changed keys written, conflicts retried, errors write nothing."""

from __future__ import annotations

import asyncio

import pytest

from shoal.manager.ipam import Ipam, IpamError
from shoal.manager.ipam.stored import NETWORKS, NODES, POOL, IpamStore, documents, from_documents
from shoal.manager.store.memory import MemoryStore


async def revisions(store: MemoryStore) -> dict[str, int]:
    return {kv.key: kv.mod_revision for kv in (await store.range("/shoal/v1/ipam/")).kvs}


async def test_a_fresh_store_starts_an_empty_plan_over_the_given_pool():
    ipam, revs = await IpamStore(MemoryStore(), pool="172.30.0.0/16").read()
    assert str(ipam.pool.pool) == "172.30.0.0/16" and revs == {POOL: 0}


async def test_changes_land_under_one_key_per_subnet():
    store = MemoryStore()
    ipams = IpamStore(store)
    subnet = await ipams.update(lambda i: i.node_subnet("n1").subnet)
    await ipams.update(lambda i: i.create_network("web"))
    assert set(await revisions(store)) == {POOL, NODES + "n1", NETWORKS + "web"}
    ipam, _ = await ipams.read()
    assert ipam.node_subnet("n1").subnet == subnet and ipam.network("web").vxlan_id == 4096


async def test_only_the_keys_a_change_touches_are_written():
    store = MemoryStore()
    ipams = IpamStore(store)
    await ipams.update(lambda i: (i.node_subnet("n1"), i.node_subnet("n2"), i.create_network("web")))
    before = await revisions(store)
    await ipams.update(lambda i: i.task_address("n1", "task-a"))
    after = await revisions(store)
    assert [k for k in after if after[k] != before[k]] == [NODES + "n1"]


async def test_a_refused_change_writes_nothing():
    store = MemoryStore()
    ipams = IpamStore(store)
    await ipams.update(lambda i: i.create_network("web", "10.50.0.0/24"))
    before = await revisions(store)
    with pytest.raises(IpamError, match="overlaps 10.50.0.0/24 of network 'web'"):
        await ipams.update(lambda i: i.create_network("db", "10.50.0.0/25"))
    assert await revisions(store) == before


async def test_a_change_with_no_effect_writes_nothing():
    store = MemoryStore()
    ipams = IpamStore(store)
    first = await ipams.update(lambda i: i.task_address("n1", "t"))
    before = await revisions(store)
    assert await ipams.update(lambda i: i.task_address("n1", "t")) == first  # idempotent: same answer
    assert await revisions(store) == before


async def test_a_node_leaving_deletes_its_key():
    store = MemoryStore()
    ipams = IpamStore(store)
    await ipams.update(lambda i: i.task_address("n1", "t"))
    await ipams.update(lambda i: i.release_node("n1"))
    assert NODES + "n1" not in await revisions(store)


async def test_concurrent_allocations_never_hand_out_an_address_twice():
    store = MemoryStore()
    ipams = IpamStore(store)
    await ipams.update(lambda i: (i.node_subnet("n1"), i.create_network("web")))

    async def one(n: int):
        await asyncio.sleep(0)
        if n % 2:
            return await ipams.update(lambda i: i.network_address("web", f"t{n}"))
        return await ipams.update(lambda i: i.task_address("n1", f"t{n}"))

    got = await asyncio.gather(*(one(n) for n in range(40)))
    assert len({str(a) for a in got}) == 40
    ipam, _ = await ipams.read()
    assert len(ipam.network("web").addresses.owners) == 20 and len(ipam.node_subnet("n1").owners) == 20


async def test_concurrent_network_creations_get_distinct_subnets_and_vxlan_ids():
    ipams = IpamStore(MemoryStore())
    nets = await asyncio.gather(*(ipams.update(lambda i, n=n: i.create_network(f"net{n}")) for n in range(8)))
    assert len({n.subnet for n in nets}) == 8 and len({n.vxlan_id for n in nets}) == 8


def test_documents_round_trip():
    ipam = Ipam.create("10.9.0.0/16")
    ipam.task_address("n1", "t")
    ipam.create_network("web", "192.168.5.0/24")
    ipam.vip("svc", "web")
    assert from_documents(documents(ipam)) == ipam


def test_documents_that_disagree_are_refused():
    ipam = Ipam.create()
    ipam.node_subnet("n1")
    docs = documents(ipam)
    docs.pop(POOL)
    docs[POOL] = documents(Ipam.create())[POOL]  # a pool that does not know n1's subnet
    with pytest.raises(IpamError, match="inconsistent"):
        from_documents(docs)


class InterleavingStore(MemoryStore):
    """Yields to other writers between reading and writing, and counts refused transactions."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    async def range(self, prefix: str):
        result = await super().range(prefix)
        await asyncio.sleep(0)
        return result

    async def txn(self, compares, success, failure=()):
        result = await super().txn(compares, success, failure)
        self.refused += not result.succeeded
        return result


async def test_conflicting_writers_retry_and_both_land():
    store = InterleavingStore()
    ipams = IpamStore(store)
    await ipams.update(lambda i: i.node_subnet("n1"))
    got = await asyncio.gather(*(ipams.update(lambda i, n=n: i.task_address("n1", f"t{n}")) for n in range(10)))
    assert store.refused > 0  # they did collide
    assert len({str(a) for a in got}) == 10
    ipam, _ = await ipams.read()
    assert {ipam.node_subnet("n1").lookup(f"t{n}") for n in range(10)} == {a.ip for a in got}


async def test_writers_on_different_nodes_do_not_collide():
    store = InterleavingStore()
    ipams = IpamStore(store)
    await ipams.update(lambda i: (i.node_subnet("n1"), i.node_subnet("n2")))
    await asyncio.gather(ipams.update(lambda i: i.task_address("n1", "a")), ipams.update(lambda i: i.task_address("n2", "b")))
    assert store.refused == 0


async def test_a_change_run_in_a_thread_stores_the_same_plan_and_the_loop_keeps_running():
    import threading
    import time

    store = MemoryStore()
    ipams = IpamStore(store)
    await ipams.update(lambda i: i.node_subnet("n1"))
    loop_thread = threading.get_ident()
    seen: list[int] = []
    beats = 0

    def slow(ipam: Ipam) -> str:
        seen.append(threading.get_ident())
        end = time.monotonic() + 0.3  # a pass over thousands of tasks
        while time.monotonic() < end:
            pass
        return ipam.task_address("n1", "task-a")

    async def beat() -> None:
        nonlocal beats
        while True:
            beats += 1
            await asyncio.sleep(0.01)

    beating = asyncio.create_task(beat())
    addr = await ipams.update(slow, in_thread=True)
    beating.cancel()
    assert seen and seen[0] != loop_thread
    assert beats >= 5, "the event loop ran while the change did"
    ipam, _ = await ipams.read()
    assert ipam.task_address("n1", "task-a") == addr  # stored: asking again gives the same address
    with pytest.raises(IpamError):
        await ipams.update(lambda i: i.create_network("x", subnet="bad"), in_thread=True)
