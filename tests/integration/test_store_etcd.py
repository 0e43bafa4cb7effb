"""EtcdStore and EmbeddedEtcd against a real etcd: what only the real thing can show (restarts, dead
endpoints, child processes). The behaviour shared with MemoryStore is in test_store_contract.py."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from shoal import etcdtls
from shoal.manager.store import embedded
from shoal.manager.store.base import Put, StoreError, write_deadline
from shoal.manager.store.embedded import EmbeddedEtcd
from shoal.manager.store.etcd import EtcdStore, connect

P = "/shoal/test/"


def dead_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"https://127.0.0.1:{s.getsockname()[1]}"


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True
    return state == "Z"  # exited, not yet reaped by its parent


async def test_watch_survives_an_etcd_restart(etcd_server, etcd_store: EtcdStore, monkeypatch) -> None:
    start = await etcd_store.put(P + "before", b"0")
    watch = etcd_store.watch(P, start)
    assert [e.key for e in await anext(watch)] == [P + "before"]
    # Hold back the re-watch until "between" is written, so only a re-watch from the last delivered
    # revision + 1 (not from "now") can deliver it.
    rewatch_allowed, rewatched = threading.Event(), threading.Event()
    add_watch = etcd_store._add_watch

    def held_add_watch(*args, **kwargs):
        rewatch_allowed.wait(10)
        result = add_watch(*args, **kwargs)
        rewatched.set()
        return result

    monkeypatch.setattr(etcd_store, "_add_watch", held_add_watch)
    nxt = asyncio.ensure_future(anext(watch))
    await etcd_server.restart()
    other = await connect([etcd_server.endpoint], tls=etcd_server.tls)
    try:
        await other.put(P + "between", b"1")
        rewatch_allowed.set()
        await asyncio.to_thread(rewatched.wait, 10)
        await other.put(P + "after", b"2")
        events = [e.key for e in await asyncio.wait_for(nxt, 10)]
        if len(events) < 2:
            events += [e.key for e in await asyncio.wait_for(anext(watch), 10)]
    finally:
        await other.close()
    assert events == [P + "between", P + "after"]


async def test_unary_calls_fail_clearly_while_etcd_is_down_and_recover(etcd_server, etcd_store: EtcdStore) -> None:
    await etcd_server.stop()
    try:
        with pytest.raises(StoreError, match=f"cannot reach etcd at {etcd_server.endpoint}"):
            await etcd_store.get(P + "x")
        with pytest.raises(StoreError, match="cannot reach etcd"):
            await etcd_store.put(P + "x", b"1")
    finally:
        await etcd_server.start()
    for _ in range(50):  # the gRPC channel reconnects with a short backoff
        try:
            await etcd_store.put(P + "x", b"1")
            break
        except StoreError:
            await asyncio.sleep(0.1)
    assert (kv := await etcd_store.get(P + "x")) is not None and kv.value == b"1"


async def test_connect_to_a_dead_endpoint_fails_fast_and_clearly(tmp_path) -> None:
    url = dead_endpoint()
    t0 = time.monotonic()
    with pytest.raises(StoreError, match=f"cannot reach etcd at {url}"):
        await connect([url], timeout=2.0, tls=etcdtls.ensure_pair(tmp_path, "client", [], server=False))
    assert time.monotonic() - t0 < 2.5


async def test_fails_over_to_a_live_endpoint(etcd_server, etcd_store: EtcdStore) -> None:
    store = await connect([dead_endpoint(), etcd_server.endpoint], timeout=2.0, tls=etcd_server.tls)
    try:
        rev = await store.put(P + "f", b"1")
        assert (kv := await store.get(P + "f")) is not None and kv.mod_revision == rev
    finally:
        await store.close()


async def test_range_pages_through_many_keys_at_one_revision(etcd_store: EtcdStore) -> None:
    for batch in range(20):  # 2,560 keys: more than one 2,000-key page
        await etcd_store.txn([], [Put(f"{P}{batch:02}/{i:03}", b"v") for i in range(128)])
    rng = await etcd_store.range(P)
    assert len(rng.kvs) == 20 * 128 and len({kv.key for kv in rng.kvs}) == len(rng.kvs)
    assert [kv.key for kv in rng.kvs] == sorted(kv.key for kv in rng.kvs)
    assert rng.revision == max(kv.mod_revision for kv in rng.kvs)


def test_https_endpoints_need_the_etcd_tls_files_and_plain_ones_refuse_them(tmp_path) -> None:
    with pytest.raises(ValueError, match="https needs the etcd CA and a client certificate"):
        EtcdStore(["https://127.0.0.1:2379"])
    with pytest.raises(ValueError, match="https needs"):
        EtcdStore(["http://127.0.0.1:2379"], tls=etcdtls.files(tmp_path, "client"))
    with pytest.raises(ValueError, match="use https://"):
        EtcdStore(["unix:///run/etcd.sock"])
    with pytest.raises(ValueError):
        EtcdStore([])


@pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd binary not found; run make setup")
async def test_embedded_etcd_starts_serves_restarts_and_stops(tmp_path: Path) -> None:
    etcd = EmbeddedEtcd(tmp_path)
    await etcd.start()
    pid, endpoint = etcd.pid, etcd.endpoint
    assert pid is not None and (tmp_path / "etcd.pid").read_text().strip() == str(pid)
    try:
        store = await connect([endpoint], tls=etcd.client_tls)
        await store.put(P + "kept", b"1")
        await store.close()
        await etcd.stop()
        assert gone(pid) and not etcd.running and not (tmp_path / "etcd.pid").exists()
        await etcd.start()  # same data dir: same port, same data
        assert etcd.endpoint == endpoint
        store = await connect([endpoint], tls=etcd.client_tls)
        assert (kv := await store.get(P + "kept")) is not None and kv.value == b"1"
        await store.close()
    finally:
        second = etcd.pid
        await etcd.stop()
    assert second is not None and gone(second)
    assert (tmp_path / "etcd.log").exists() and (tmp_path / "etcd" / "member").is_dir()


@pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd binary not found; run make setup")
async def test_embedded_etcd_ends_an_orphan_left_on_its_data_dir(tmp_path: Path) -> None:
    first = EmbeddedEtcd(tmp_path)
    await first.start()
    orphan = first.pid
    assert orphan is not None
    second = EmbeddedEtcd(tmp_path)  # a new manager after the old one was killed
    try:
        await second.start()
        assert gone(orphan) and second.pid != orphan
    finally:
        await second.stop()
        await first.stop()  # reaps the orphan's zombie


async def test_embedded_etcd_refuses_clearly_without_the_binary(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(embedded.shutil, "which", lambda name: None)
    with pytest.raises(StoreError, match=r"etcd not found on PATH; run `make setup`"):
        await EmbeddedEtcd(tmp_path).start()


@pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd binary not found; run make setup")
async def test_embedded_etcd_reports_a_failed_start_with_its_log(tmp_path: Path) -> None:
    (tmp_path / "etcd").mkdir()
    (tmp_path / "etcd" / "member").write_text("not a directory")  # etcd cannot open its data
    etcd = EmbeddedEtcd(tmp_path, ready_timeout=5)
    with pytest.raises(StoreError, match="etcd (exited|did not become healthy).*last lines of"):
        await etcd.start()
    assert not etcd.running and os.path.exists(tmp_path / "etcd.log")


def _proc_state(stat: str) -> str:
    try:
        with open(stat) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


def _wait_stopped(pid: int) -> None:
    """Until every thread of ``pid`` is stopped (state T), so no request sent after this can be answered.
    A full CI run once saw a write answered right after the SIGSTOP; the state is asserted, and shown."""
    deadline = time.monotonic() + 5
    while True:
        state = _proc_state(f"/proc/{pid}/stat")
        threads = {_proc_state(f"/proc/{pid}/task/{t}/stat") for t in os.listdir(f"/proc/{pid}/task")} - {"gone"}
        if state == "T" and threads == {"T"}:
            return
        assert time.monotonic() < deadline, f"etcd (pid {pid}) not stopped after SIGSTOP: state {state}, threads {threads}"
        time.sleep(0.01)


async def test_a_write_etcd_does_not_answer_fails_at_the_write_timeout_not_the_read_timeout(etcd_server) -> None:
    """A write lost with a dying raft leader is only answered after etcd's own 5 s: the store gives up sooner.

    A frozen etcd stands in for the lost proposal (neither answers). Reads keep their long deadline.
    """
    import signal

    store = await connect([etcd_server.endpoint], timeout=30.0, tls=etcd_server.tls, write_timeout=0.3)
    pid = etcd_server.etcd.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        _wait_stopped(pid)
        t0 = time.monotonic()
        with pytest.raises(StoreError):
            await store.put(P + "w", b"1")
        assert time.monotonic() - t0 < 15, "the write waited for the 30 s read deadline"
    finally:
        os.kill(pid, signal.SIGCONT)
    try:
        await store.put(P + "w", b"2")  # the same store writes once etcd answers again
        assert (kv := await store.get(P + "w")) is not None and kv.value == b"2"
    finally:
        await store.close()


async def test_a_write_deadline_set_by_the_caller_cuts_an_unanswered_write_sooner(etcd_server) -> None:
    """``write_deadline`` (the dispatcher's first session-key write): a frozen etcd fails that write at
    its short deadline, not the store's; the same store's other writes keep theirs."""
    import signal

    store = await connect([etcd_server.endpoint], timeout=30.0, tls=etcd_server.tls, write_timeout=5.0)
    pid = etcd_server.etcd.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        _wait_stopped(pid)
        t0 = time.monotonic()
        with write_deadline(0.3), pytest.raises(StoreError):
            await store.put(P + "quick", b"1")
        assert time.monotonic() - t0 < 2.5, "the write waited for the store's 5 s write deadline"
        t0 = time.monotonic()
        with pytest.raises(StoreError):
            await store.put(P + "patient", b"1")
        assert time.monotonic() - t0 > 4, "outside the block, writes keep the store's deadline"
    finally:
        os.kill(pid, signal.SIGCONT)
    try:
        with write_deadline(0.3):
            await store.put(P + "quick", b"2")  # answered in time: written
        assert (kv := await store.get(P + "quick")) is not None and kv.value == b"2"
    finally:
        await store.close()
