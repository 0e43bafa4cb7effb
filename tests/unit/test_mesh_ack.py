"""The agent's half of the drain ordering: it tells the manager, at once, which map its loaded mesh follows.

The map carries the manager's revision; ``NetMap`` keeps the newest; ``MeshSync`` reports a revision only
once nftables holds a mesh of it (never for a mesh nftables refused); the session writes it up the stream
at once, not a heartbeat period later (the manager holds an old task's stop until every node said so)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.retry import Backoff
from shoal.worker.config import AgentConfig
from shoal.worker.identity import NodeIdentity
from shoal.worker.netmap import NetMap
from shoal.worker.network.meshsync import MeshSync
from shoal.worker.network.nft import Endpoint, Frontend, Mesh
from shoal.worker.network.nftapply import NftApplyError
from shoal.worker.reporter import Reporter
from shoal.worker.session import Session


def test_the_map_keeps_the_newest_revision_and_a_full_map_starts_over():
    m = NetMap()
    m.apply(dpb.NetworkMap(full=True, revision=40))
    m.apply(dpb.NetworkMap(revision=45))
    m.apply(dpb.NetworkMap(revision=44))  # (never sent out of order; kept monotonic anyway)
    assert m.revision == 45
    m.apply(dpb.NetworkMap(full=True, revision=30))  # another manager's session: its revision is the truth
    assert m.revision == 30


def test_the_map_names_the_tasks_the_mesh_balances():
    m = NetMap()
    svc = dpb.MapService(id="s1", name="web")
    svc.tasks.add(id="up", health=pb.HEALTH_HEALTHY)
    svc.tasks.add(id="plain", health=pb.HEALTH_NONE)
    svc.tasks.add(id="warming", health=pb.HEALTH_STARTING)
    m.apply(dpb.NetworkMap(full=True, services=[svc]))
    assert m.serving_ids() == {"up", "plain"}


class Nft:
    """Stands in for Nft: the next ``fail`` loads fail (nft refusing; retried), the others load."""

    def __init__(self) -> None:
        self.fail = 0

    async def apply(self, mesh: Mesh) -> bool:
        await asyncio.sleep(0.005)
        if self.fail:
            self.fail -= 1
            raise NftApplyError("nft -f - failed")
        return True


def mesh(n: int) -> Mesh:
    return Mesh((Frontend("web", 80, tuple(Endpoint(f"10.0.0.{i + 1}", 80) for i in range(n))),))


async def test_a_mesh_is_acknowledged_with_its_revision_once_loaded_and_a_failed_load_only_after_its_retry():
    nft = Nft()
    sync = MeshSync(nft, Backoff(first=0.01, cap=0.02, rand=random.Random(1).random))  # type: ignore[arg-type]
    acked: list[int] = []
    sync.on_loaded = acked.append
    runner = asyncio.create_task(sync.run())
    try:
        sync.set(mesh(2), 7, frozenset({"a", "b"}))
        await asyncio.wait_for(sync.settled(), 2)
        assert acked == [7]
        nft.fail = 2
        sync.set(mesh(1), 9, frozenset({"a"}))
        await asyncio.sleep(0.012)
        assert acked == [7], "not loaded yet: not acknowledged"
        await asyncio.wait_for(sync.settled(), 2)
        assert acked == [7, 9]
    finally:
        runner.cancel()


class Call:
    def __init__(self) -> None:
        self.sent: list[tuple[float, int]] = []

    async def write(self, req: dpb.SessionRequest) -> None:
        self.sent.append((asyncio.get_running_loop().time(), req.mesh_revision))

    def cancel(self) -> bool:
        return True


async def test_a_loaded_mesh_is_reported_at_once_not_a_heartbeat_period_later(tmp_path: Path):
    s = Session(NodeIdentity(AgentConfig(["m1:4242"], "SHOAL-1-x-y", tmp_path / "agent"), pb.NodeDescription()), Reporter(), lambda _a: None)
    call = Call()
    hb = asyncio.create_task(s._heartbeats(call, 30.0))  # type: ignore[arg-type]  # the stand-in has what it uses
    try:
        await asyncio.sleep(0.01)
        asked = asyncio.get_running_loop().time()
        s.mesh_loaded(12)
        s.mesh_loaded(11)  # older: no news
        for _ in range(200):
            if call.sent:
                break
            await asyncio.sleep(0.005)
        assert [rev for _, rev in call.sent] == [12] and call.sent[0][0] - asked < 1.0
    finally:
        hb.cancel()
