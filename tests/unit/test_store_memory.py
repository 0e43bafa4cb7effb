"""MemoryStore details the contract tests cannot reach cheaply on etcd: a fake clock, history limits,
and a property test against a tiny model of etcd's revision bookkeeping."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.manager.store.base import Compacted, Compare, Delete, Event, Put, StoreError
from shoal.manager.store.memory import MemoryStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_revisions_start_at_one_and_count_changing_txns() -> None:
    store = MemoryStore()
    assert (await store.range("")).revision == 1
    assert await store.put("/a", b"1") == 2
    assert (await store.txn([], [])).revision == 2
    assert (await store.txn([], [Delete("/missing")])).revision == 2
    assert (await store.txn([], [Put("/b", b""), Put("/c", b""), Delete("/a")])).revision == 3


async def test_version_and_create_revision_restart_after_delete() -> None:
    store = MemoryStore()
    await store.put("/k", b"1")
    await store.put("/k", b"2")
    assert store.version("/k") == 2
    await store.delete("/k")
    assert store.version("/k") == 0
    rev = await store.put("/k", b"3")
    kv = await store.get("/k")
    assert kv is not None and kv.create_revision == rev and store.version("/k") == 1


async def test_lease_expiry_on_a_fake_clock() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    lease = await store.lease_grant(10)
    await store.txn([], [Put("/a", b"", lease), Put("/b", b"", lease), Put("/c", b"", lease)])
    await store.put("/c", b"detached")  # a put without the lease detaches the key from it
    watch = store.watch("/", (await store.range("")).revision + 1)
    clock.now += 8
    assert await store.lease_refresh(lease) == 10
    clock.now += 8
    assert await store.get("/a") is not None  # refreshed: 2 s left
    store.advance(2.5)
    assert store.snapshot() == {"/c": b"detached"}
    batch = await asyncio.wait_for(anext(watch), 1)
    assert [(e.type, e.key) for e in batch] == [("delete", "/a"), ("delete", "/b")]
    assert len({e.mod_revision for e in batch}) == 1  # one revision for the whole expiry
    with pytest.raises(StoreError, match="expired"):
        await store.lease_refresh(lease)
    await store.close()


async def test_leases_expire_on_their_own_in_real_time() -> None:
    store = MemoryStore()
    lease = await store.lease_grant(0.05)
    rev = await store.put("/l", b"", lease)
    watch = store.watch("/", rev + 1)
    batch = await asyncio.wait_for(anext(watch), 2)  # no reads or advance(): the reaper did it
    assert batch == [Event("delete", "/l", None, rev + 1)]
    await store.close()


async def test_watch_from_zero_means_from_now_and_filters_by_prefix() -> None:
    store = MemoryStore()
    await store.put("/x/old", b"")
    watch = store.watch("/x/", 0)
    await store.put("/y/other", b"")
    await store.put("/x/new", b"")
    assert [e.key for e in await asyncio.wait_for(anext(watch), 1)] == ["/x/new"]


async def test_bounded_history_compacts_old_revisions() -> None:
    store = MemoryStore(history=3)
    for i in range(5):
        await store.put(f"/h/{i}", b"")  # revisions 2..6; the last three events are kept
    with pytest.raises(Compacted):
        await anext(store.watch("/h/", 2))
    assert [e.key for e in await anext(store.watch("/h/", 4))] == ["/h/2"]
    with pytest.raises(StoreError, match="future revision"):
        await store.compact(100)


async def test_refusals() -> None:
    store = MemoryStore()
    with pytest.raises(StoreError, match="duplicate key"):
        await store.txn([], [Put("/d/a", b""), Delete("/d/", prefix=True)])
    with pytest.raises(TypeError):
        await store.txn([Compare("/a", "mod", "==", b"1")], [])
    with pytest.raises(ValueError):
        await store.lease_grant(0)
    assert (await store.range("")).revision == 1  # nothing refused was applied
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.put("/a", b"")
    with pytest.raises(StoreError, match="closed"):
        store.watch("/", 0)


ops = st.lists(
    st.tuples(
        st.sampled_from(["put", "delete", "delete_prefix", "create_only"]),
        st.sampled_from(["/p/a", "/p/b", "/p/ab", "/q/a"]),
        st.binary(max_size=2),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(ops)
def test_matches_a_model_and_watch_replay_rebuilds_the_state(script: list[tuple[str, str, bytes]]) -> None:
    async def run() -> None:
        store = MemoryStore()
        model: dict[str, tuple[bytes, int, int]] = {}  # key -> (value, create revision, version)
        rev = 1
        for kind, key, value in script:
            matching = sorted(k for k in model if k.startswith(key)) if kind == "delete_prefix" else [key]
            if kind == "put" or (kind == "create_only" and key not in model):
                rev += 1
                old = model.get(key)
                model[key] = (value, old[1] if old else rev, old[2] + 1 if old else 1)
                result = await store.txn([Compare(key, "mod", "==", 0)] if kind == "create_only" else [],
                                         [Put(key, value)])
                assert result.succeeded
            elif kind == "create_only":
                assert not (await store.txn([Compare(key, "mod", "==", 0)], [Put(key, value)])).succeeded
            else:
                if any(k in model for k in matching):
                    rev += 1
                for k in matching:
                    model.pop(k, None)
                await store.txn([], [Delete(key, prefix=kind == "delete_prefix")])
            assert (await store.range("")).revision == rev
        rng = await store.range("/")
        assert {kv.key: (kv.value, kv.create_revision, store.version(kv.key)) for kv in rng.kvs} == model
        replayed: dict[str, bytes] = {}
        watch, last = store.watch("/", 2), 1
        while last < rev:
            batch = await anext(watch)
            last = batch[-1].mod_revision
            for e in batch:
                if e.type == "put":
                    replayed[e.key] = e.value or b""
                else:
                    replayed.pop(e.key, None)
        assert replayed == {k: v[0] for k, v in model.items()}
        await store.close()

    asyncio.run(run())
