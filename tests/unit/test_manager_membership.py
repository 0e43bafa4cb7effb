"""A manager's membership key (``node ls``: Reachable) on its lease, on a machine slow enough to let the lease
expire between its grant and its first use (the cgroup-v2 test VM under emulation: the manager used to exit
with "requested lease not found")."""

from __future__ import annotations

from pathlib import Path

from shoal.manager.server import Manager, ManagerConfig, member_ttl
from shoal.manager.store import objects
from shoal.manager.store.memory import MemoryStore


class StallingStore(MemoryStore):
    """The first ``stalls`` leases run out before the caller gets to use them."""

    def __init__(self, stalls: int) -> None:
        super().__init__()
        self.stalls = stalls
        self.granted: list[int] = []

    async def lease_grant(self, ttl: float) -> int:
        lease = await super().lease_grant(ttl)
        self.granted.append(lease)
        if self.stalls:
            self.stalls -= 1
            self.advance(ttl + 1)
        return lease


async def test_a_lease_that_expired_before_the_announce_is_granted_again(tmp_path: Path) -> None:
    mgr = Manager(ManagerConfig(data_dir=tmp_path, node_id="m1", listen_addr="10.0.0.1:4242"))
    store = mgr.store = StallingStore(stalls=2)
    lease = await mgr._announce_on_new_lease()
    assert store.granted[-1] == lease and len(store.granted) == 3, "two leases ran out, the third holds the key"
    got = await objects.managers.get(store, "m1")
    assert got is not None and got.obj.addr == "10.0.0.1:4242"
    store.advance(member_ttl(mgr.cfg.election_ttl) + 1)
    assert await objects.managers.get(store, "m1") is None, "the key still goes with its lease"
