"""Control-API writes ride out a store failover without writing twice."""

import pytest

from shoal.manager.controlapi import write_retrying
from shoal.manager.store.base import Compare, Put, StoreError
from shoal.manager.store.memory import MemoryStore


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

    return await write_retrying(store, [Compare("/name", "create", "==", 0)], [Put("/name", b"mine")], applied, timeout=5)


async def test_a_write_that_failed_before_applying_is_retried():
    store = FlakyStore(failures=2, apply_then_fail=False)
    res = await _create(store)
    assert res.succeeded and store.calls == 3
    assert (await store.get("/name")).value == b"mine"


async def test_a_write_applied_before_its_reply_was_lost_is_not_written_twice():
    store = FlakyStore(failures=1, apply_then_fail=True)
    res = await _create(store)
    assert res.succeeded, "the create-only compare would fail on a blind retry; the applied check sees our value"
    assert store.calls == 1


async def test_gives_up_after_the_timeout():
    store = FlakyStore(failures=100, apply_then_fail=False)

    async def never() -> int:
        return 0

    with pytest.raises(StoreError):
        await write_retrying(store, [], [Put("/x", b"1")], never, timeout=0.5)
