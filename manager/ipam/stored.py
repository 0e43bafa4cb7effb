"""The address plan in the store: one key per subnet, changed with compare-and-swap.

The plan is split so that unrelated allocations do not collide: ``ipam/pool`` holds the subnet pool
and the prefixes, ``ipam/nodes/<node>`` each node's task addresses, ``ipam/networks/<name>`` each
network's addresses, VIPs and VXLAN id. ``update`` reads the plan, runs a change on it (pure code on
``Ipam``), and writes back only the keys whose content changed, on condition that neither they nor
the pool key changed meanwhile; on a conflict it reads again and re-runs the change. Every subnet or
network creation and removal rewrites the pool key, so two of them never interleave (subnets and
VXLAN ids stay unique); task addresses on different nodes or networks are written side by side.
A change that raises (``IpamError``: overlapping subnet, pool exhausted...) writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from shoal.manager.ipam.addresses import AddressSpace, IpamError
from shoal.manager.ipam.allocator import Ipam, Network
from shoal.manager.ipam.subnets import DEFAULT_POOL, SubnetPool
from shoal.manager.store.base import Compare, Delete, Op, Put, Store
from shoal.manager.store.keys import PREFIX

T = TypeVar("T")

ROOT = PREFIX + "ipam/"
POOL = ROOT + "pool"
NODES = ROOT + "nodes/"
NETWORKS = ROOT + "networks/"
ATTEMPTS = 20


def _encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def documents(ipam: Ipam) -> dict[str, bytes]:
    """The plan as store keys and values."""
    pool = {"pool": ipam.pool.to_dict(), "node_prefix": ipam.node_prefix, "network_prefix": ipam.network_prefix}
    docs = {POOL: _encode(pool)}
    docs.update({NODES + n: _encode(s.to_dict()) for n, s in ipam.nodes.items()})
    docs.update({NETWORKS + n: _encode(net.to_dict()) for n, net in ipam.networks.items()})
    return docs


def from_documents(docs: dict[str, bytes], pool: str = DEFAULT_POOL) -> Ipam:
    """The plan from store keys and values (a fresh plan over ``pool`` when there is none yet)."""
    if POOL not in docs:
        return Ipam.create(pool)
    head = json.loads(docs[POOL])
    ipam = Ipam(SubnetPool.from_dict(head["pool"]), int(head["node_prefix"]), int(head["network_prefix"]))
    for key, raw in docs.items():
        if key.startswith(NODES):
            ipam.nodes[key[len(NODES):]] = AddressSpace.from_dict(json.loads(raw))
        elif key.startswith(NETWORKS):
            net = Network.from_dict(json.loads(raw))
            ipam.networks[net.name] = net
    return Ipam.from_dict(ipam.to_dict())  # the consistency checks of from_dict


class IpamStore:
    """Reads and changes the plan kept in ``store``; ``pool`` only matters before the first write."""

    def __init__(self, store: Store, pool: str = DEFAULT_POOL) -> None:
        self.store = store
        self.pool = pool

    async def read(self) -> tuple[Ipam, dict[str, int]]:
        """The plan and the mod revision of each of its keys (the pool key is 0 while absent)."""
        found = await self.store.range(ROOT)
        docs = {kv.key: kv.value for kv in found.kvs}
        revisions = {kv.key: kv.mod_revision for kv in found.kvs}
        revisions.setdefault(POOL, 0)
        return from_documents(docs, self.pool), revisions

    async def update(self, change: Callable[[Ipam], T]) -> T:
        """Run ``change`` on the current plan and store what it changed; retried on a conflict."""
        for _ in range(ATTEMPTS):
            ipam, revisions = await self.read()
            before = documents(ipam)
            result = change(ipam)  # IpamError propagates: nothing written
            after = documents(ipam)
            ops: list[Op] = [Put(k, v) for k, v in after.items() if before.get(k) != v]
            ops += [Delete(k) for k in before if k not in after]
            if not ops:
                return result
            touched = {POOL, *(op.key for op in ops)}
            compares = [Compare(k, "mod", "==", revisions.get(k, 0)) for k in sorted(touched)]
            if (await self.store.txn(compares, ops)).succeeded:
                return result
        raise IpamError(f"the address plan kept changing under {ATTEMPTS} attempts; try again")
