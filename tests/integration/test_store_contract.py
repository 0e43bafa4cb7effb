"""The Store contract, run against MemoryStore and a real etcd: the fake must behave like the real thing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from shoal.manager.store.base import (
    MAX_TXN_OPS,
    Compacted,
    Compare,
    Delete,
    Event,
    Put,
    Store,
    StoreError,
)
from shoal.manager.store.memory import MemoryStore

P = "/shoal/test/"


async def pass_time(store: Store, seconds: float) -> None:
    if isinstance(store, MemoryStore):
        store.advance(seconds)
        await asyncio.sleep(0)
    else:
        await asyncio.sleep(seconds)


async def take(it: AsyncIterator[list[Event]], n: int, timeout: float = 10.0) -> list[Event]:
    """The next ``n`` events from a watch, flattened across batches."""
    out: list[Event] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            out.extend(await anext(it))
    return out


def brief(events: list[Event]) -> list[tuple[str, str, bytes | None]]:
    return [(e.type, e.key, e.value) for e in events]


async def test_put_get_range(store: Store) -> None:
    assert await store.get(P + "a") is None
    r1 = await store.put(P + "b", b"2")
    r2 = await store.put(P + "a", b"1")
    await store.put("/shoal/other", b"x")
    assert r2 == r1 + 1
    kv = await store.get(P + "a")
    assert kv is not None and (kv.value, kv.mod_revision, kv.create_revision) == (b"1", r2, r2)
    r3 = await store.put(P + "a", b"1b")
    assert r3 == r2 + 2  # after the put to /shoal/other
    kv = await store.get(P + "a")
    assert kv is not None and (kv.mod_revision, kv.create_revision) == (r3, r2)
    await store.put("/shoal/later", b"x")
    rng = await store.range(P)
    assert [(k.key, k.value) for k in rng.kvs] == [(P + "a", b"1b"), (P + "b", b"2")]
    assert rng.revision == r3 + 1  # the store's revision, not the newest key's


async def test_cas_on_mod_revision_loses_to_a_newer_write(store: Store) -> None:
    rev = await store.put(P + "k", b"v1")
    won = await store.txn([Compare(P + "k", "mod", "==", rev)], [Put(P + "k", b"v2")])
    assert won.succeeded and won.revision == rev + 1
    lost = await store.txn([Compare(P + "k", "mod", "==", rev)], [Put(P + "k", b"stale")], [Put(P + "lost", b"1")])
    assert not lost.succeeded
    kv = await store.get(P + "k")
    assert kv is not None and kv.value == b"v2"
    assert await store.get(P + "lost") is not None  # the failure branch ran


async def test_create_only_compare(store: Store) -> None:
    create = [Compare(P + "new", "mod", "==", 0)]
    first = await store.txn(create, [Put(P + "new", b"1")])
    second = await store.txn(create, [Put(P + "new", b"2")])
    assert first.succeeded and not second.succeeded
    assert second.revision == first.revision  # a failed txn writes nothing
    kv = await store.get(P + "new")
    assert kv is not None and kv.value == b"1"


async def test_version_create_and_value_compares(store: Store) -> None:
    assert (await store.txn([Compare(P + "x", "version", "==", 0)], [])).succeeded
    assert not (await store.txn([Compare(P + "x", "value", "==", b"")], [])).succeeded  # missing key
    r = await store.put(P + "x", b"a")
    await store.put(P + "x", b"b")
    assert (await store.txn([Compare(P + "x", "version", "==", 2)], [])).succeeded
    assert (await store.txn([Compare(P + "x", "create", "==", r), Compare(P + "x", "value", "==", b"b")], [])).succeeded
    assert (await store.txn([Compare(P + "x", "mod", ">", r)], [])).succeeded
    assert not (await store.txn([Compare(P + "x", "value", "!=", b"b")], [])).succeeded


async def test_a_prefix_compare_holds_for_every_key_under_it(store: Store) -> None:
    """etcd's range compare: "nothing under the folder changed since revision R" is one compare."""
    seen = (await store.range(P + "f/")).revision
    unchanged = Compare(P + "f/", "mod", "<", seen + 1, prefix=True)
    assert (await store.txn([unchanged], [])).succeeded  # an empty range compares as a missing key
    await store.put(P + "f-sibling", b"")  # a key that only shares the text before the slash is outside
    assert (await store.txn([unchanged], [])).succeeded
    await store.put(P + "f/a", b"")
    assert not (await store.txn([unchanged], [Put(P + "won", b"")])).succeeded  # a key created after R
    seen = (await store.range(P + "f/")).revision
    assert (await store.txn([Compare(P + "f/", "mod", "<", seen + 1, prefix=True)], [])).succeeded
    await store.put(P + "f/a", b"changed")
    assert not (await store.txn([Compare(P + "f/", "mod", "<", seen + 1, prefix=True)], [])).succeeded
    assert await store.get(P + "won") is None
    assert (await store.txn([Compare(P + "f/", "create", "!=", 0, prefix=True)], [])).succeeded  # every key exists
    assert not (await store.txn([Compare(P + "g/", "create", "!=", 0, prefix=True)], [])).succeeded  # none there


async def test_delete_prefix_and_revisions(store: Store) -> None:
    await store.txn([], [Put(P + "d/1", b""), Put(P + "d/2", b""), Put(P + "e", b"")])
    rev = (await store.range(P)).revision
    assert await store.delete(P + "missing") == rev  # deleting nothing is not a write
    res = await store.txn([], [Delete(P + "d/", prefix=True)])
    assert res.revision == rev + 1
    assert [kv.key for kv in (await store.range(P)).kvs] == [P + "e"]


async def test_txn_limits(store: Store) -> None:
    ok = await store.txn([], [Put(f"{P}many/{i:03}", b"") for i in range(MAX_TXN_OPS)])
    assert ok.succeeded and len((await store.range(P + "many/")).kvs) == MAX_TXN_OPS
    with pytest.raises(ValueError, match="at most 128"):
        await store.txn([], [Put(f"{P}many/{i:03}", b"") for i in range(MAX_TXN_OPS + 1)])
    with pytest.raises(StoreError, match="duplicate key"):
        await store.txn([], [Put(P + "dup", b"1"), Put(P + "dup", b"2")])


async def test_lease_expiry_deletes_keys_and_tells_watchers(store: Store) -> None:
    lease = await store.lease_grant(1)
    rev = await store.put(P + "alive", b"1", lease=lease)
    await store.put(P + "kept", b"1")
    watch = store.watch(P, rev + 1)
    for _ in range(40):
        if await store.get(P + "alive") is None:
            break
        await pass_time(store, 0.25)
    assert await store.get(P + "alive") is None and await store.get(P + "kept") is not None
    events = await take(watch, 2)
    assert brief(events) == [("put", P + "kept", b"1"), ("delete", P + "alive", None)]
    with pytest.raises(StoreError, match="expired or not found"):
        await store.lease_refresh(lease)


async def test_lease_refresh_revoke_and_unknown_lease(store: Store) -> None:
    lease = await store.lease_grant(30)
    assert await store.lease_refresh(lease) >= 30
    await store.put(P + "l", b"", lease=lease)
    assert (kv := await store.get(P + "l")) is not None and kv.lease == lease
    await store.lease_revoke(lease)
    assert await store.get(P + "l") is None
    await store.lease_revoke(lease)  # revoking twice is harmless
    with pytest.raises(StoreError):
        await store.put(P + "l", b"", lease=lease)


async def test_watch_replays_from_start_revision_then_follows(store: Store) -> None:
    first = await store.put(P + "w/1", b"a")
    await store.put("/shoal/elsewhere", b"-")
    await store.delete(P + "w/1")
    watch = store.watch(P + "w/", first)
    assert brief(await take(watch, 2)) == [("put", P + "w/1", b"a"), ("delete", P + "w/1", None)]
    rev = (await store.txn([], [Put(P + "w/2", b"b"), Put(P + "w/3", b"c")])).revision
    events = await take(watch, 2)
    assert brief(events) == [("put", P + "w/2", b"b"), ("put", P + "w/3", b"c")]
    assert {e.mod_revision for e in events} == {rev}


async def test_concurrent_watchers_each_see_everything(store: Store) -> None:
    start = (await store.range(P)).revision + 1
    watches = [store.watch(P, start) for _ in range(3)]
    await store.put(P + "a", b"1")
    await store.put(P + "b", b"2")
    results = await asyncio.gather(*(take(w, 2) for w in watches))
    assert all(brief(r) == brief(results[0]) for r in results) and len(results[0]) == 2


async def test_watch_from_compacted_revision_raises(store: Store) -> None:
    old = await store.put(P + "c", b"1")
    now = await store.put(P + "c", b"2")
    await store.compact(now)  # type: ignore[attr-defined]
    with pytest.raises(Compacted):
        await anext(store.watch(P, old))
    watch = store.watch(P, now)  # the compaction revision itself is still watchable
    await store.put(P + "c", b"3")
    assert [e.value for e in await take(watch, 2)] == [b"2", b"3"]


async def test_close_ends_watchers(store: Store) -> None:
    watch = store.watch(P, 0)  # 0: from now on
    pending = asyncio.ensure_future(anext(watch))
    await asyncio.sleep(0.2)
    await store.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, 5)
    with pytest.raises(StoreError, match="closed"):
        await store.get(P + "x")
