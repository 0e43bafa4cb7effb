"""Liveness in the dispatcher: heartbeats stay in memory, and etcd sees only a node's session come and go.

Periods are short (50 ms heartbeats, down after 3 missed) so the tests run in well under a second each;
each waits for an outcome with a deadline rather than for a fixed time where it can.
"""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from shoal.manager.store import keys
from shoal.proto import dispatcher_pb2 as dpb
from tests.fixtures.dispatcher import Aborted, Harness

PERIOD = 0.05  # heartbeat period; a node is down after 3 missed (0.15 s)


async def eventually(cond, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture
async def h():
    async with Harness(heartbeat_period=PERIOD, missed=3, grace=0.05) as harness:
        await harness.add_node("n1")
        yield harness


async def test_a_node_that_keeps_sending_heartbeats_stays_up(h: Harness):
    s = h.open("n1")
    first = await s.next()
    for _ in range(12):  # 0.36 s: more than twice the time it takes to miss 3 heartbeats
        s.heartbeat()
        await asyncio.sleep(PERIOD * 0.6)
    assert (await h.session_key("n1")).session_id == first.session_id
    assert "n1" in h.dispatcher.sessions
    await s.close()


async def test_a_silent_node_is_marked_down_and_its_stream_ends(h: Harness):
    s = h.open("n1")
    await s.next()
    started = time.monotonic()

    async def down() -> bool:
        return await h.session_key("n1") is None

    await eventually(down)
    assert time.monotonic() - started >= PERIOD * 3 * 0.9, "not before 3 heartbeats were missed"
    assert "n1" not in h.dispatcher.sessions
    with pytest.raises(StopAsyncIteration):
        await s.next()


async def test_etcd_sees_no_heartbeat_only_the_session_coming_and_going(h: Harness):
    s = h.open("n1")
    await s.next()
    rev = (await h.store.get(keys.key("session", "n1"))).mod_revision
    for _ in range(5):
        s.heartbeat()
        await asyncio.sleep(PERIOD / 2)
    assert (await h.store.get(keys.key("session", "n1"))).mod_revision == rev, "heartbeats are kept in memory"
    await s.close()


async def test_a_closed_stream_ends_the_session_after_the_grace(h: Harness):
    s = h.open("n1")
    await s.next()
    await s.close()
    assert await h.session_key("n1") is not None, "within the grace the node may still reconnect"

    async def down() -> bool:
        return await h.session_key("n1") is None

    await eventually(down, timeout=1.0)


async def test_a_reconnect_within_the_grace_keeps_the_node_up():
    async with Harness(heartbeat_period=0.5, grace=0.2) as h:
        await h.add_node("n1")
        old = h.open("n1")
        await old.next()
        await old.close()
        new = h.open("n1")
        second = await new.next()
        await asyncio.sleep(0.4)  # past the old stream's grace
        assert (await h.session_key("n1")).session_id == second.session_id
        assert h.dispatcher.sessions["n1"].session_id == second.session_id
        await new.close()


async def test_a_lost_dispatcher_lease_is_regranted_with_every_session_key(h: Harness):
    s = h.open("n1")
    msg = await s.next()
    old_lease = h.dispatcher.lease
    await h.store.lease_revoke(old_lease)  # as when etcd lost it (this manager stalled, etcd restarted)
    assert await h.session_key("n1") is None

    async def back() -> bool:
        s.heartbeat()
        kv = await h.store.get(keys.key("session", "n1"))
        return kv is not None and kv.lease == h.dispatcher.lease != old_lease

    await eventually(back)
    assert (await h.session_key("n1")).session_id == msg.session_id, "the same session, on the new lease"
    await s.close()


async def test_a_unary_heartbeat_keeps_the_session_alive_and_returns_the_period(h: Harness):
    s = h.open("n1")
    msg = await s.next()
    ctx = h.ca.node("n1")
    for _ in range(8):
        resp = await h.dispatcher.Heartbeat(dpb.HeartbeatRequest(node_id="n1", session_id=msg.session_id), ctx)
        assert resp.period_ns == int(PERIOD * 1e9)
        await asyncio.sleep(PERIOD * 0.6)
    assert await h.session_key("n1") is not None
    await s.close()


async def test_a_heartbeat_for_an_unknown_or_ended_session_is_refused(h: Harness):
    s = h.open("n1")
    msg = await s.next()
    with pytest.raises(Aborted) as err:
        await h.dispatcher.Heartbeat(dpb.HeartbeatRequest(node_id="n1", session_id="not-mine"), h.ca.node("n1"))
    assert err.value.code == grpc.StatusCode.NOT_FOUND and "start a new session" in err.value.details
    await s.close()
    await asyncio.sleep(0.2)
    with pytest.raises(Aborted) as err:
        await h.dispatcher.Heartbeat(dpb.HeartbeatRequest(node_id="n1", session_id=msg.session_id), h.ca.node("n1"))
    assert err.value.code == grpc.StatusCode.NOT_FOUND


async def test_a_heartbeat_for_another_node_is_refused(h: Harness):
    await h.add_node("n2")
    s = h.open("n1")
    msg = await s.next()
    with pytest.raises(Aborted) as err:
        await h.dispatcher.Heartbeat(dpb.HeartbeatRequest(node_id="n1", session_id=msg.session_id), h.ca.node("n2"))
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
    await s.close()


async def test_a_stalled_manager_does_not_count_its_stall_against_the_nodes():
    async with Harness(heartbeat_period=PERIOD, missed=3, grace=0.05) as h:
        await h.add_node("n1")
        s = h.open("n1")
        await s.next()
        s.heartbeat()
        await asyncio.sleep(0)
        time.sleep(PERIOD * 5)  # the whole event loop is blocked, heartbeats included
        s.heartbeat()
        await asyncio.sleep(PERIOD)
        assert await h.session_key("n1") is not None, "the stall was the manager's, not the node's"
        await s.close()
