"""The agent's identity (join, node id, role) and session (messages, heartbeats, failover rules).

What needs a real manager (TLS, the Session stream) is in tests/integration; here the parts that
decide: which errors end the agent, how manager lists merge, how a session message is applied, when a
heartbeat gives up, and how registration retries, refuses and remembers the node.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest

from shoal import __version__, tls
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.worker.agent import Agent
from shoal.worker.config import AgentConfig, describe, mem_total
from shoal.worker.executor_fake import FakeExecutor
from shoal.worker.identity import REFUSALS, NodeIdentity, merge_addrs, renewal_wait
from shoal.worker.join import JoinError
from shoal.worker.reporter import Reporter
from shoal.worker.session import Ended, Session, attempt_order, ended, heartbeat_timeout


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


def config(tmp_path: Path, managers: list[str] | None = None, **kw) -> AgentConfig:
    return AgentConfig(managers if managers is not None else ["m1:4242"], "SHOAL-1-x-y", tmp_path / "agent", **kw)


# ---- config ---------------------------------------------------------------------------------------


def test_memory_comes_from_meminfo():
    assert mem_total("MemFree:  10 kB\nMemTotal:  2048 kB\n") == 2048 * 1024
    assert mem_total("nothing here\n") == 0


def test_describe_names_the_host_and_its_labels(tmp_path):
    cfg = config(tmp_path, hostname="w7", engine_labels={"zone": "east"})
    d = describe(cfg, meminfo="MemTotal: 1024 kB\n")
    assert d.hostname == "w7" and d.memory_bytes == 1024 * 1024 and d.nano_cpus >= 10**9
    assert dict(d.engine_labels) == {"shoal.version": __version__, "zone": "east"}


def test_describe_reads_this_hosts_memory(tmp_path):
    assert describe(config(tmp_path)).memory_bytes > 0


# ---- pure rules -------------------------------------------------------------------------------------


def test_manager_lists_merge_in_order_of_first_mention():
    assert merge_addrs(["a", "b"], ["b", "c"], ["a", "d"]) == ["a", "b", "c", "d"]
    assert merge_addrs() == []


def test_how_a_session_error_ends():
    assert ended(grpc.StatusCode.UNAUTHENTICATED) is Ended.REFUSED
    removed = "permission denied: node n1 was removed from the cluster; its certificate is revoked"
    assert ended(grpc.StatusCode.PERMISSION_DENIED, removed) is Ended.REFUSED, "node rm: the node leaves"
    assert ended(grpc.StatusCode.PERMISSION_DENIED, "this certificate is for node a, not b") is Ended.RETRY
    assert ended(grpc.StatusCode.FAILED_PRECONDITION) is Ended.RENEW
    for code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL):
        assert ended(code) is Ended.RETRY


def test_join_refusals_are_final_and_unreachable_managers_are_not():
    assert grpc.StatusCode.UNAUTHENTICATED in REFUSALS and grpc.StatusCode.PERMISSION_DENIED in REFUSALS
    assert grpc.StatusCode.UNAVAILABLE not in REFUSALS


def test_heartbeat_write_timeout_is_three_periods_but_never_under_a_second():
    assert heartbeat_timeout(1.0) == 3.0
    assert heartbeat_timeout(0.1) == 1.0


def test_a_certificate_already_due_renews_after_a_second_not_in_a_spin():
    assert renewal_wait(-50) == 1.0 and renewal_wait(3600) == 3600


# ---- identity -------------------------------------------------------------------------------------


class ScriptedIdentity(NodeIdentity):
    """Registration answered from a script (manager address -> error or response), no network."""

    def __init__(self, cfg: AgentConfig, script: dict[str, list]) -> None:
        super().__init__(cfg, pb.NodeDescription(hostname="w1"))
        self.script = script
        self.asked: list[tuple[str, str, bool]] = []

    async def _exchange(self, addr: str, req: dpb.RegisterRequest, renew: bool) -> dpb.RegisterResponse:
        self.asked.append((addr, req.node_id, renew))
        answer = self.script[addr].pop(0) if len(self.script[addr]) > 1 else self.script[addr][0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


def joined(node_id: str = "n1", role: int = pb.NodeSpec.WORKER, managers: tuple[str, ...] = ()) -> dpb.RegisterResponse:
    return dpb.RegisterResponse(node_id=node_id, role=role, managers=list(managers))


async def test_registering_remembers_the_node_id_and_learns_the_managers(tmp_path):
    node = ScriptedIdentity(config(tmp_path), {"m1:4242": [joined("n1", managers=("m2:4242",))]})
    await node.register()
    assert node.node_id == "n1" and node.managers == ["m1:4242", "m2:4242"]
    assert json.loads((tmp_path / "agent" / "node.json").read_text()) == {"node_id": "n1"}


async def test_a_restarted_node_registers_under_the_id_it_kept(tmp_path):
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "node.json").write_text(json.dumps({"node_id": "kept"}))
    node = ScriptedIdentity(config(tmp_path), {"m1:4242": [joined("kept")]})
    await node.register()
    assert node.asked == [("m1:4242", "kept", False)]


async def test_a_preset_node_id_wins_over_the_file(tmp_path):
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "node.json").write_text(json.dumps({"node_id": "kept"}))
    node = ScriptedIdentity(config(tmp_path, node_id="preset"), {"m1:4242": [joined("preset")]})
    await node.register()
    assert node.asked[0][1] == "preset"


async def test_an_unreachable_manager_is_skipped_for_the_next_one(tmp_path):
    script = {"m1:4242": [rpc_error(grpc.StatusCode.UNAVAILABLE, "down")], "m2:4242": [joined("n1")]}
    node = ScriptedIdentity(config(tmp_path, ["m1:4242", "m2:4242"]), script)
    await node.register()
    assert [a for a, _, _ in node.asked] == ["m1:4242", "m2:4242"]


async def test_registration_retries_until_a_manager_answers(tmp_path):
    script = {"m1:4242": [OSError("connection refused"), rpc_error(grpc.StatusCode.UNAVAILABLE), joined("n1")]}
    node = ScriptedIdentity(config(tmp_path), script)
    await asyncio.wait_for(node.register(), 5)
    assert len(node.asked) == 3 and node.node_id == "n1"


@pytest.mark.parametrize("code", sorted(REFUSALS, key=lambda c: c.name))
async def test_a_refused_join_is_final_and_names_the_manager(tmp_path, code):
    node = ScriptedIdentity(config(tmp_path, ["m1:4242", "m2:4242"]), {"m1:4242": [rpc_error(code, "invalid join token")], "m2:4242": [joined()]})
    with pytest.raises(JoinError, match="join refused by m1:4242: invalid join token"):
        await node.register()
    assert not (tmp_path / "agent" / "node.json").exists()


async def test_the_daemon_hears_of_a_role_change_once(tmp_path):
    seen: list[int] = []
    node = ScriptedIdentity(config(tmp_path), {"m1:4242": [joined(role=pb.NodeSpec.WORKER), joined(role=pb.NodeSpec.WORKER), joined(role=pb.NodeSpec.MANAGER)]})
    node.on_role = lambda role, resp: seen.append(role)
    await node.register()
    await node.register(renew=True)
    await node.register(renew=True)
    assert seen == [pb.NodeSpec.WORKER, pb.NodeSpec.MANAGER] and node.role == pb.NodeSpec.MANAGER


def test_a_node_without_a_certificate_is_a_worker(tmp_path):
    assert NodeIdentity(config(tmp_path), pb.NodeDescription()).cert_role() == pb.NodeSpec.WORKER


def test_the_certificate_says_the_role(tmp_path):
    ca, ca_key = tls.new_ca()
    key = tls.new_key()
    node = NodeIdentity(config(tmp_path), pb.NodeDescription())
    node.creds.files.save(tls.sign(ca, ca_key, key.public_key(), "n1", "manager", "c1"), tls.key_pem(key), ca)
    assert node.cert_role() == pb.NodeSpec.MANAGER


# ---- session messages and heartbeats -------------------------------------------------------------------


class Call:
    """Stands in for the session stream's write side: counts heartbeats, can hang or break."""

    def __init__(self, hang: bool = False, broken: bool = False) -> None:
        self.hang, self.broken = hang, broken
        self.writes = 0
        self.was_cancelled = False

    async def write(self, _req: dpb.SessionRequest) -> None:
        if self.broken:
            raise asyncio.InvalidStateError("the stream is closed")
        if self.hang:
            await asyncio.sleep(3600)
        self.writes += 1

    def cancel(self) -> bool:
        self.was_cancelled = True
        return True


def session(tmp_path: Path) -> tuple[Session, list[dpb.Assignments]]:
    got: list[dpb.Assignments] = []
    node = NodeIdentity(config(tmp_path, ["m1:4242"]), pb.NodeDescription())
    return Session(node, Reporter(), got.append), got


def test_a_session_message_hands_on_assignments_and_learns_managers(tmp_path):
    s, got = session(tmp_path)
    s.node.managers = ["m1:4242", "old:4242"]
    msg = dpb.SessionMessage(session_id="s1", managers=["m2:4242", "m1:4242"], heartbeat_period_ns=500_000_000)
    msg.assignments.full = True
    s._received(msg)
    assert s.period == 0.5 and len(got) == 1 and got[0].full
    assert s.node.managers == ["m2:4242", "m1:4242"], "the cluster's list, then the configured ones; forgotten ones go"


def test_a_message_without_assignments_or_period_changes_only_what_it_carries(tmp_path):
    s, got = session(tmp_path)
    s._received(dpb.SessionMessage(session_id="s1"))
    assert got == [] and s.period == 1.0 and s.node.managers == ["m1:4242"]


async def test_the_first_message_attaches_the_reporter_starts_heartbeats_and_marks_ready(tmp_path):
    s, _ = session(tmp_path)
    s.node.node_id = "n1"
    call = Call()
    hb = s._established("m1:4242", object(), call, dpb.SessionMessage(session_id="s9", heartbeat_period_ns=5_000_000))
    try:
        assert s.ready.is_set() and s.reporter._session_id == "s9" and s.reporter._node_id == "n1"
        deadline = asyncio.get_running_loop().time() + 10  # heartbeats every 5 ms; a loaded machine may lag
        while call.writes < 3:
            assert asyncio.get_running_loop().time() < deadline, f"only {call.writes} heartbeats written"
            await asyncio.sleep(0.01)
    finally:
        hb.cancel()


async def test_a_heartbeat_that_cannot_be_written_restarts_the_session(tmp_path):
    s, _ = session(tmp_path)
    call = Call(broken=True)
    await asyncio.wait_for(s._heartbeats(call, 0.001), 2)
    assert call.was_cancelled


async def test_a_heartbeat_stuck_past_its_limit_restarts_the_session(tmp_path):
    s, _ = session(tmp_path)
    call = Call(hang=True)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await asyncio.wait_for(s._heartbeats(call, 0.01), 30)
    assert call.was_cancelled and loop.time() - t0 > 0.9, "gives up after heartbeat_timeout (1 s here), not before"


def test_restart_cancels_the_current_call_and_is_harmless_without_one(tmp_path):
    s, _ = session(tmp_path)
    s.restart()
    call = Call()
    s._call = call  # type: ignore[assignment]  # the stand-in has what restart uses
    s.restart()
    assert call.was_cancelled


# ---- failover between managers ----------------------------------------------------------------------


class ScriptedSession(Session):
    """Sessions that end as a script says (an error, or None: ended cleanly); then one that holds."""

    def __init__(self, node: NodeIdentity, script: list) -> None:
        super().__init__(node, Reporter(), lambda _a: None)
        self.script = script
        self.tried: list[str] = []
        self.holding = asyncio.Event()

    async def _session(self, addr: str) -> None:
        self.tried.append(addr)
        if not self.script:
            self.holding.set()
            await asyncio.Event().wait()
        item = self.script.pop(0)
        if item is not None:
            raise item


async def hold(s: ScriptedSession) -> asyncio.Task:
    task = asyncio.create_task(s.run())
    await asyncio.wait_for(s.holding.wait(), 5)
    return task


async def test_a_broken_session_fails_over_to_the_next_manager(tmp_path):
    node = ScriptedIdentity(config(tmp_path, ["m1:4242", "m2:4242"]), {"m1:4242": [joined()]})
    s = ScriptedSession(node, [rpc_error(grpc.StatusCode.UNAVAILABLE), None])
    task = await hold(s)
    assert s.tried == ["m1:4242", "m2:4242", "m2:4242"], "m2 ended its session cleanly; m1 broke, so m2 comes first"
    task.cancel()


def test_a_manager_that_failed_is_tried_after_the_others_longest_failed_first():
    managers = ["m1", "m2", "m3"]
    assert attempt_order(managers, {}) == managers
    assert attempt_order(managers, {"m1": 5.0}) == ["m2", "m3", "m1"]
    assert attempt_order(managers, {"m1": 5.0, "m2": 3.0}) == ["m3", "m2", "m1"]
    assert attempt_order(managers, {"gone": 1.0}) == managers, "only managers still listed are tried"


async def test_losing_a_manager_goes_to_another_at_once_without_a_backoff_wait(tmp_path, monkeypatch):
    from shoal.worker import session as session_mod

    node = ScriptedIdentity(config(tmp_path, ["m1:4242", "m2:4242", "m3:4242"]), {})
    s = ScriptedSession(node, [rpc_error(grpc.StatusCode.UNAVAILABLE, "Socket closed")])

    async def no_sleep(self) -> None:  # a backoff wait, recorded where it happens
        s.tried.append("wait")
        self.next()

    monkeypatch.setattr(session_mod.Backoff, "sleep", no_sleep)
    task = await hold(s)
    assert s.tried == ["m1:4242", "m2:4242"], "the next manager right after the stream broke, no backoff wait"
    task.cancel()


async def test_a_manager_that_broke_is_tried_last_in_the_rounds_after(tmp_path, monkeypatch):
    from shoal.worker import session as session_mod

    node = ScriptedIdentity(config(tmp_path, ["m1:4242", "m2:4242", "m3:4242"]), {})
    down = rpc_error(grpc.StatusCode.UNAVAILABLE)
    # m1 breaks, m2 ends its session cleanly, m3 cannot be reached: the next round starts with m2, not m1
    s = ScriptedSession(node, [down, None, down])

    async def no_sleep(self) -> None:
        s.tried.append("wait")
        self.next()

    monkeypatch.setattr(session_mod.Backoff, "sleep", no_sleep)
    task = await hold(s)
    assert s.tried == ["m1:4242", "m2:4242", "m3:4242", "wait", "m2:4242"]
    task.cancel()


async def test_when_every_manager_is_down_the_agent_keeps_trying_them_in_turn(tmp_path):
    node = ScriptedIdentity(config(tmp_path, ["m1:4242", "m2:4242"]), {})
    s = ScriptedSession(node, [rpc_error(grpc.StatusCode.UNAVAILABLE)] * 6)
    task = await hold(s)
    assert s.tried == ["m1:4242", "m2:4242"] * 3 + ["m1:4242"]
    task.cancel()


async def test_a_session_refused_outright_stops_the_agent(tmp_path):
    node = ScriptedIdentity(config(tmp_path), {})
    s = ScriptedSession(node, [rpc_error(grpc.StatusCode.UNAUTHENTICATED, "node removed")])
    with pytest.raises(JoinError, match="session refused by m1:4242: node removed"):
        await asyncio.wait_for(s.run(), 5)


async def test_a_role_change_renews_the_certificate_then_reconnects(tmp_path):
    node = ScriptedIdentity(config(tmp_path), {"m1:4242": [joined(role=pb.NodeSpec.MANAGER)]})
    s = ScriptedSession(node, [rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "role changed")])
    task = await hold(s)
    assert node.asked == [("m1:4242", "", True)] and node.role == pb.NodeSpec.MANAGER
    assert s.tried == ["m1:4242", "m1:4242"]
    task.cancel()


# ---- the agent composes them ------------------------------------------------------------------------


def test_the_agent_shows_its_parts_state(tmp_path):
    a = Agent(config(tmp_path, ["m1:4242"], node_id="n1"), FakeExecutor())
    assert a.node_id == "n1" and a.managers == ["m1:4242"] and not a.ready.is_set()
    a.node.managers = ["m2:4242"]
    assert a.managers == ["m2:4242"]
    a.on_role = print
    assert a.node.on_role is print and a.on_role is print
    assert a.creds is a.node.creds


def test_a_network_map_reaches_the_agent_before_the_assignments_beside_it():
    from shoal.worker.session import Session

    seen: list[str] = []
    s = Session(None, None, lambda a: seen.append("assignments"), lambda m: seen.append("map"))  # type: ignore[arg-type]
    s._received(dpb.SessionMessage(network_map=dpb.NetworkMap(full=True), assignments=dpb.Assignments(full=True)))
    s._received(dpb.SessionMessage(assignments=dpb.Assignments()))
    assert seen == ["map", "assignments", "assignments"]
