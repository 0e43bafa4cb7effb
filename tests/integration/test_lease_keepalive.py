"""The leader's lease keeper on a real etcd: slow answers do not cost the lease, a revoked lease is given up.

etcd renews a lease when a keepalive *arrives*; its answer can come back late (an overloaded etcd or
machine, a congested link). A proxy in front of etcd here passes requests at once and holds every
answer back for longer than the lease has left after a keepalive: a keeper that waited only that
long, or counted a late answer as a loss, gave the lease up although etcd kept renewing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from urllib.parse import urlsplit

from shoal.manager.leasekeeper import LeaseKeeper
from shoal.manager.store.base import Put
from shoal.manager.store.etcd import EtcdStore

KEY = "/shoal/test/keepalive/leader"


class SlowAnswers:
    """A TCP proxy to ``upstream`` that forwards requests at once and every answer ``delay`` s late."""

    def __init__(self, upstream: str, delay: float) -> None:
        parts = urlsplit(upstream)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 2379
        self.delay = delay
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"https://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection(self.host, self.port)
        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def pump(r: asyncio.StreamReader, put: object) -> None:
            while data := await r.read(65536):
                put(data)  # type: ignore[operator]  # a writer's write or the queue's put
            put(b"")  # type: ignore[operator]

        async def late() -> None:
            while True:
                at, data = await held.get()
                await asyncio.sleep(max(0.0, at + self.delay - time.monotonic()))
                if not data:
                    client_w.close()
                    return
                client_w.write(data)

        for coro in (pump(client_r, up_w.write), pump(up_r, lambda d: held.put_nowait((time.monotonic(), d))), late()):
            task = asyncio.create_task(coro)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def stop(self) -> None:
        for t in list(self.tasks):
            t.cancel()
        if self.server is not None:
            self.server.close()


async def keep_beating(keeper: LeaseKeeper, lost: threading.Event, seconds: float) -> None:
    """The event loop's side: beat as the election does, for ``seconds`` or until the lease is lost."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and not lost.is_set():
        keeper.beat()
        await asyncio.sleep(keeper.every)


async def test_answers_later_than_the_lease_has_left_do_not_lose_a_lease_etcd_keeps_renewing(etcd_server, etcd_store):
    proxy = SlowAnswers(etcd_server.endpoint, delay=1.7)  # longer than the 1.5 s a 2 s lease has left after a tick
    slow = EtcdStore([await proxy.start()], tls=etcd_server.tls)  # (connect's 5 s status call is too short here)
    keeper = None
    try:
        refresh = slow.blocking_lease_refresh()
        warm = await etcd_store.lease_grant(30)
        await asyncio.to_thread(refresh, warm, 20.0)  # set up the keepalive connection (a few delayed round trips)
        lease = await etcd_store.lease_grant(2)  # the least etcd grants with its default timing
        await etcd_store.txn([], [Put(KEY, b"m1", lease=lease)])
        lost = threading.Event()
        keeper = LeaseKeeper(refresh, lease, 2.0)
        keeper.start(lost.set)
        await keep_beating(keeper, lost, 8.0)  # four TTLs
        assert keeper.lost is None, f"the keeper gave up a live lease: {keeper.lost}"
        assert (await etcd_store.get(KEY)) is not None, "etcd kept the lease: every keepalive arrived in time"
        assert keeper.answered_at > keeper.expires - 2.0 + 1.5, "answers came back late (the proxy held them)"
    finally:
        if keeper is not None:
            keeper.stop()
        await slow.close()
        await proxy.stop()


async def test_a_lease_etcd_no_longer_has_is_given_up_at_the_next_answer(etcd_store):
    lease = await etcd_store.lease_grant(2)
    lost = threading.Event()
    keeper = LeaseKeeper(etcd_store.blocking_lease_refresh(), lease, 2.0)
    keeper.start(lost.set)
    try:
        await keep_beating(keeper, lost, 1.2)
        assert keeper.lost is None
        await etcd_store.lease_revoke(lease)  # another manager, an operator: the lease is gone in etcd
        began = time.monotonic()
        await keep_beating(keeper, lost, 5.0)
        assert keeper.lost == "etcd says the lease expired or is gone"
        assert time.monotonic() - began < 1.5, "within a keepalive or two (every 0.5 s)"
    finally:
        keeper.stop()


async def test_keepalives_use_a_connection_of_their_own(etcd_store):
    refresh = etcd_store.blocking_lease_refresh()
    lease = await etcd_store.lease_grant(5)
    assert await asyncio.to_thread(refresh, lease, 5.0) > 0
    line = etcd_store._lease_line
    assert line is not None and line is not etcd_store
    assert ("grpc.use_local_subchannel_pool", 1) in line._options, "gRPC would otherwise share the store's connection"
    with contextlib.suppress(Exception):
        await etcd_store.lease_revoke(lease)
