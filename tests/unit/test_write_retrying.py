"""Control-API writes ride out a store failover without writing twice."""

import pytest

from shoal.manager.store.base import Compare, Put, StoreError
from shoal.manager.store.memory import MemoryStore
from shoal.manager.store.writes import Conflict, Write, Writer


class FlakyStore(MemoryStore):
    """Fails the first ``failures`` transactions; ``apply_then_fail`` applies them before failing (a lost reply)."""

    def __init__(self, failures: int, apply_then_fail: bool) -> None:
        super().__init__()
        self.failures = failures
        self.apply_then_fail = apply_then_fail
        self.calls = 0

    async def txn(self, compares, success, failure=()):
        self.calls += 1
        if self.failures:
            self.failures -= 1
            if self.apply_then_fail:
                await super().txn(compares, success, failure)
            raise StoreError("Deadline Exceeded")
        return await super().txn(compares, success, failure)


async def _create(store):
    async def applied() -> int:
        kv = await store.get("/name")
        return kv.mod_revision if kv is not None and kv.value == b"mine" else 0

    return await Writer(store).apply_retrying(Write((Compare("/name", "create", "==", 0),), (Put("/name", b"mine"),)), applied, timeout=5)


async def test_a_write_that_failed_before_applying_is_retried():
    store = FlakyStore(failures=2, apply_then_fail=False)
    rev = await _create(store)
    assert rev and store.calls == 3
    assert (await store.get("/name")).value == b"mine"


async def test_a_write_applied_before_its_reply_was_lost_is_not_written_twice():
    store = FlakyStore(failures=1, apply_then_fail=True)
    rev = await _create(store)
    assert rev == (await store.get("/name")).mod_revision, "a blind retry would fail its create-only compare; the applied check sees our value"
    assert store.calls == 1


async def test_gives_up_after_the_timeout():
    store = FlakyStore(failures=100, apply_then_fail=False)

    async def never() -> int:
        return 0

    with pytest.raises(StoreError):
        await Writer(store).apply_retrying(Write((), (Put("/x", b"1"),)), never, timeout=0.5)


async def test_a_compare_that_fails_is_a_conflict_not_retried():
    store = FlakyStore(failures=0, apply_then_fail=False)
    await store.put("/name", b"theirs")
    store.calls = 0

    async def never() -> int:
        return 0

    with pytest.raises(Conflict):
        await Writer(store).apply_retrying(Write((Compare("/name", "create", "==", 0),), (Put("/name", b"mine"),)), never, timeout=5)
    assert store.calls == 1 and (await store.get("/name")).value == b"theirs"
