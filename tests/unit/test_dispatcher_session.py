"""The dispatcher's session: what an agent is sent (the whole set, then increments) and who may hold it."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from shoal.manager.auth import ROLE_CHANGED
from shoal.manager.store import keys
from shoal.proto import types_pb2 as pb
from tests.fixtures.dispatcher import Aborted, Harness


@pytest.fixture
async def h():
    async with Harness(heartbeat_period=0.5) as harness:  # no node misses its heartbeats in these tests
        await harness.add_node("n1")
        await harness.add_node("n2")
        yield harness


def ids(tasks) -> set[str]:
    return {t.id for t in tasks}


async def test_a_session_starts_with_every_task_the_node_must_act_on(h: Harness):
    await h.put_task("assigned", "n1")
    await h.put_task("running", "n1")
    await h.report("running", pb.RUNNING)
    await h.put_task("stopping", "n1", state=pb.RUNNING, desired=pb.SHUTDOWN)  # the agent must stop it
    await h.put_task("done", "n1", state=pb.COMPLETE, desired=pb.SHUTDOWN)  # over and unwanted: dropped
    await h.put_task("unplaced", "n1", state=pb.PENDING)  # a global task the scheduler has not checked yet
    await h.put_task("elsewhere", "n2")
    s = h.open("n1")
    msg = await s.next()
    assert msg.assignments.full
    assert ids(msg.assignments.updated) == {"assigned", "running", "stopping"}
    assert not msg.assignments.removed
    assert msg.session_id and msg.heartbeat_period_ns == int(0.5 * 1e9)
    sent = {t.id: t for t in msg.assignments.updated}
    assert sent["running"].status.state == pb.RUNNING, "a full set carries the effective status: a restarted agent resumes from it"
    assert sent["assigned"].meta.version == h.cache.rev("task", "assigned"), "each task carries the revision it was read at"
    await s.close()


async def test_a_session_is_recorded_in_the_store_on_the_dispatchers_lease(h: Harness):
    s = h.open("n1")
    msg = await s.next()
    rec = await h.session_key("n1")
    assert rec == pb.NodeSession(node_id="n1", session_id=msg.session_id, manager_id="m1")
    assert (await h.store.get(keys.key("session", "n1"))).lease == h.dispatcher.lease
    assert set(h.dispatcher.sessions) == {"n1"}
    await s.close()


async def test_changes_arrive_as_increments_naming_only_what_changed(h: Harness):
    await h.put_task("a", "n1")
    await h.put_task("b", "n1")
    s = h.open("n1")
    await s.next()
    await h.put_task("a", "n1", desired=pb.SHUTDOWN)
    msg = await s.next()
    assert not msg.assignments.full
    assert ids(msg.assignments.updated) == {"a"} and not msg.assignments.removed
    assert msg.assignments.updated[0].desired_state == pb.SHUTDOWN
    await h.put_task("c", "n1")
    msg = await s.next()
    assert ids(msg.assignments.updated) == {"c"}
    await h.delete_task("b")
    msg = await s.next()
    assert list(msg.assignments.removed) == ["b"] and not msg.assignments.updated
    await s.close()


async def test_a_task_that_ended_and_is_no_longer_wanted_is_removed(h: Harness):
    await h.put_task("a", "n1", state=pb.RUNNING, desired=pb.SHUTDOWN)
    s = h.open("n1")
    assert ids((await s.next()).assignments.updated) == {"a"}
    await h.report("a", pb.SHUTDOWN)
    msg = await s.next()
    assert list(msg.assignments.removed) == ["a"], "the agent cleans up what drops out of its set"
    await s.close()


async def test_the_agents_own_reports_are_not_echoed_back(h: Harness):
    await h.put_task("a", "n1")
    s = h.open("n1")
    await s.next()
    for state in (pb.ACCEPTED, pb.STARTING, pb.RUNNING):
        await h.report("a", state)
    assert await s.quiet(), "a report changes the task's status, not the task the node was sent"
    await s.close()


async def test_other_nodes_changes_wake_nothing_here(h: Harness):
    s = h.open("n1")
    await s.next()
    await h.put_task("x", "n2")
    await h.report("x", pb.RUNNING)
    assert await s.quiet()
    await s.close()


async def test_a_node_that_never_joined_cannot_open_a_session(h: Harness):
    s = h.open("ghost")
    with pytest.raises(Aborted) as err:
        await s.next()
    assert err.value.code == grpc.StatusCode.NOT_FOUND and "join first" in err.value.details
    assert await h.session_key("ghost") is None


async def test_a_node_cannot_open_a_session_as_another_node(h: Harness):
    s = h.open("n1", ctx=h.ca.node("n2"))
    with pytest.raises(Aborted) as err:
        await s.next()
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED and "n2" in err.value.details
    assert await h.session_key("n1") is None


async def test_a_new_session_of_a_node_ends_the_old_one(h: Harness):
    old = h.open("n1")
    first = await old.next()
    new = h.open("n1")
    second = await new.next()
    assert second.session_id != first.session_id
    with pytest.raises(StopAsyncIteration):
        await old.next()
    assert (await h.session_key("n1")).session_id == second.session_id
    await old.close()
    await asyncio.sleep(0.2)  # past the grace: the old stream's end must not take the new session's key
    assert (await h.session_key("n1")).session_id == second.session_id
    await new.close()


async def test_a_role_change_ends_the_session_so_the_node_renews_its_certificate(h: Harness):
    s = h.open("n1")
    await s.next()
    await h.set_role("n1", pb.NodeSpec.MANAGER)
    with pytest.raises(Aborted) as err:
        await s.next()
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION and err.value.details == ROLE_CHANGED


async def test_a_session_opened_with_a_certificate_of_the_old_role_is_refused(h: Harness):
    await h.set_role("n1", pb.NodeSpec.MANAGER)
    s = h.open("n1", ctx=h.ca.node("n1", "worker"))
    with pytest.raises(Aborted) as err:
        await s.next()
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
    ok = h.open("n1", ctx=h.ca.node("n1", "manager"))
    assert (await ok.next()).assignments.full
    await ok.close()


async def test_managers_are_listed_in_every_session_message(h: Harness):
    from shoal.manager.store import objects

    await h.writer.apply(objects.managers.put(pb.ManagerStatus(addr="10.0.0.1:4242"), "m1"))
    await h.writer.apply(objects.managers.put(pb.ManagerStatus(addr="10.0.0.2:4242"), "m2"))
    await h.settle()
    s = h.open("n1")
    assert list((await s.next()).managers) == ["10.0.0.1:4242", "10.0.0.2:4242"], "an agent fails over to any of them"
    await h.put_task("a", "n1")
    assert list((await s.next()).managers) == ["10.0.0.1:4242", "10.0.0.2:4242"]
    await s.close()


def fail_session_writes(h: Harness, times: int, deadlines: list | None = None) -> list[str]:
    """The store refuses the next ``times`` writes of a session key (a write cut short as an etcd leader dies);
    ``deadlines`` collects the write deadline each session-key write was sent with."""
    from shoal.manager.store.base import WRITE_DEADLINE, StoreError

    real = h.store.txn
    failed: list[str] = []

    async def txn(compares, success, failure=()):
        session_write = any(getattr(op, "key", "").startswith(keys.key("session", "")) for op in success)
        if session_write and deadlines is not None:
            deadlines.append(WRITE_DEADLINE.get())
        if len(failed) < times and session_write:
            failed.append(success[0].key)
            raise StoreError("cannot reach etcd: deadline exceeded")
        return await real(compares, success, failure)

    h.store.txn = txn  # type: ignore[method-assign]
    return failed


async def test_a_session_key_write_cut_short_is_sent_again_until_it_lands(h: Harness):
    failed = fail_session_writes(h, 2)  # the old code gave up on the second failure and ended the stream
    s = h.open("n1")
    msg = await s.next()
    assert len(failed) == 2
    assert (await h.session_key("n1")).session_id == msg.session_id
    await s.close()


async def test_the_first_session_key_write_waits_briefly_and_the_retries_as_long_as_the_store_does(h: Harness):
    deadlines: list = []
    fail_session_writes(h, 1, deadlines)  # lost with a dying etcd raft leader: sent again after 0.75 s, not 2 s
    s = h.open("n1")
    await s.next()
    assert deadlines == [0.75, None]
    await s.close()


async def test_a_session_ended_while_its_key_was_being_written_leaves_no_key(h: Harness):
    from shoal.manager.store.base import StoreError

    real = h.store.txn
    gate = asyncio.Event()

    async def slow(compares, success, failure=()):
        if any(getattr(op, "key", "") == keys.key("session", "n1") for op in success) and not gate.is_set():
            gate.set()
            await asyncio.sleep(0.3)  # a newer session of the node starts meanwhile
            raise StoreError("deadline exceeded")
        return await real(compares, success, failure)

    h.store.txn = slow  # type: ignore[method-assign]
    first = h.open("n1")
    pending = asyncio.ensure_future(first.next(timeout=5))
    await gate.wait()
    second = h.open("n1")
    msg = await second.next()
    with pytest.raises(StopAsyncIteration):
        await pending
    assert (await h.session_key("n1")).session_id == msg.session_id, "the ended session's late write does not take the key"
    await second.close()
