"""The address plan in the store: one key per subnet, changed with compare-and-swap.

The plan is split so that unrelated allocations do not collide: ``ipam/pool`` holds the subnet pool
and the prefixes, ``ipam/nodes/<node>`` each node's task addresses, ``ipam/networks/<name>`` each
network's addresses, VIPs and VXLAN id. ``update`` reads the plan, runs a change on it (pure code on
``Ipam``), and writes back only the keys whose content changed, on condition that neither they nor
the pool key changed meanwhile; on a conflict it reads again and re-runs the change. Every subnet or
network creation and removal rewrites the pool key, so two of them never interleave (subnets and
VXLAN ids stay unique); task addresses on different nodes or networks are written side by side.
A change that raises (``IpamError``: overlapping subnet, pool exhausted...) writes nothing.

A change too large for one transaction (a pass that places tasks on a thousand nodes touches a thousand
node keys; etcd takes at most ``MAX_TXN_OPS`` per transaction) is written in several, each on condition
that the pool key is still the one this change saw, in an order that leaves the plan readable between
them: deletions first (a pool entry without its key is fine, a key without its pool entry is not), then
the pool key, then the other keys. Each key holds whole owners, and every change is idempotent per
owner, so when a later transaction loses a race the change is simply run again on what is stored.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

from shoal.manager.ipam.addresses import AddressSpace, IpamError
from shoal.manager.ipam.allocator import Ipam, Network
from shoal.manager.ipam.subnets import DEFAULT_POOL, DEFAULT_PREFIX, SubnetPool
from shoal.manager.store.base import MAX_TXN_OPS, Compare, Delete, Op, Put, Store
from shoal.manager.store.keys import PREFIX

T = TypeVar("T")

ROOT = PREFIX + "ipam/"
POOL = ROOT + "pool"
NODES = ROOT + "nodes/"
NETWORKS = ROOT + "networks/"
ATTEMPTS = 20
CHUNK = MAX_TXN_OPS - 1  # ops (and compares besides the pool key's) per transaction


def _encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def documents(ipam: Ipam) -> dict[str, bytes]:
    """The plan as store keys and values."""
    pool = {"pool": ipam.pool.to_dict(), "node_prefix": ipam.node_prefix, "network_prefix": ipam.network_prefix,
            "ingress_prefix": ipam.ingress_prefix}
    docs = {POOL: _encode(pool)}
    docs.update({NODES + n: _encode(s.to_dict()) for n, s in ipam.nodes.items()})
    docs.update({NETWORKS + n: _encode(net.to_dict()) for n, net in ipam.networks.items()})
    return docs


def from_documents(docs: dict[str, bytes], pool: str = DEFAULT_POOL, prefix: int = DEFAULT_PREFIX) -> Ipam:
    """The plan from store keys and values (a fresh plan over ``pool``, with /``prefix`` node and network
    subnets, when there is none yet)."""
    if POOL not in docs:
        return Ipam.create(pool, prefix, prefix)
    head = json.loads(docs[POOL])
    ipam = Ipam(SubnetPool.from_dict(head["pool"]), int(head["node_prefix"]), int(head["network_prefix"]),
                ingress_prefix=int(head.get("ingress_prefix", 0)))  # a plan stored before it existed: the default
    for key, raw in docs.items():
        if key.startswith(NODES):
            ipam.nodes[key[len(NODES):]] = AddressSpace.from_dict(json.loads(raw))
        elif key.startswith(NETWORKS):
            net = Network.from_dict(json.loads(raw))
            ipam.networks[net.name] = net
    ipam.check()
    return ipam


class IpamStore:
    """Reads and changes the plan kept in ``store``; ``pool`` only matters before the first write."""

    def __init__(self, store: Store, pool: str = DEFAULT_POOL, prefix: int = DEFAULT_PREFIX) -> None:
        self.store = store
        self.pool = pool
        self.prefix = prefix  # node and network subnets (--default-addr-pool-mask-length), before the first write
        self._known: tuple[Ipam, dict[str, bytes], dict[str, int]] | None = None  # as last written (see ``update``)

    async def read(self) -> tuple[Ipam, dict[str, int]]:
        """The plan and the mod revision of each of its keys (the pool key is 0 while absent)."""
        ipam, revisions, _ = await self._read()
        return ipam, revisions

    async def _read(self) -> tuple[Ipam, dict[str, int], dict[str, bytes]]:
        found = await self.store.range(ROOT)
        docs = {kv.key: kv.value for kv in found.kvs}
        revisions = {kv.key: kv.mod_revision for kv in found.kvs}
        revisions.setdefault(POOL, 0)
        return from_documents(docs, self.pool, self.prefix), revisions, docs

    async def update(self, change: Callable[[Ipam], T], in_thread: bool = False, reuse: bool = False) -> T:
        """Run ``change`` on the current plan and store what it changed; retried on a conflict.

        ``in_thread``: decode the plan, run ``change`` and encode the result in a worker thread. For the
        leader's allocator, whose change reads only its own snapshot: over 10,000 task addresses the three
        steps held the event loop for seconds (sessions, heartbeats and the lease waited); in a thread they
        share the interpreter with the loop, which keeps running.

        ``reuse``: start from the plan as this object last wrote it (no read, no decoding) when it has it.
        For the leader's allocator, the plan's writer but for network creations and removals, which
        rewrite the pool key: every write compares the pool key and each key it writes, so a plan changed
        behind it fails the write, which is then run again on a fresh read."""
        for attempt in range(ATTEMPTS):
            known, self._known = (self._known if reuse and attempt == 0 else None), None
            if known is not None:
                ipam, before, revisions = known
            else:
                found = await self.store.range(ROOT)
                before = {kv.key: kv.value for kv in found.kvs}  # as stored: what ``documents`` wrote
                revisions = {kv.key: kv.mod_revision for kv in found.kvs}
                revisions.setdefault(POOL, 0)
                ipam = None

            def run(docs: dict[str, bytes] = before, plan: Ipam | None = ipam) -> tuple[T, dict[str, bytes], Ipam]:
                plan = plan if plan is not None else from_documents(docs, self.pool, self.prefix)
                result = change(plan)  # IpamError propagates: nothing written
                return result, documents(plan), plan

            result, after, changed = await asyncio.to_thread(run) if in_thread else run()
            ops: list[Op] = [Delete(k) for k in sorted(before) if k not in after]
            ops += [Put(k, after[k]) for k in sorted(after, key=lambda k: (k != POOL, k)) if before.get(k) != after[k]]
            written = await self._write(ops, revisions)
            if written is not None:
                self._known = (changed, after, written)
                return result
        raise IpamError(f"the address plan kept changing under {ATTEMPTS} attempts; try again")

    async def _write(self, ops: list[Op], revisions: dict[str, int]) -> dict[str, int] | None:
        """Write ``ops`` in order, ``CHUNK`` at a time, each while the pool key is as seen; returns the keys'
        mod revisions after it (None on a conflict)."""
        out = dict(revisions)
        for i in range(0, len(ops), CHUNK):
            chunk = ops[i:i + CHUNK]
            compares = [Compare(POOL, "mod", "==", out[POOL])]
            compares += [Compare(op.key, "mod", "==", out.get(op.key, 0)) for op in chunk if op.key != POOL]
            done = await self.store.txn(compares, chunk)
            if not done.succeeded:
                return None
            for op in chunk:
                if isinstance(op, Delete):
                    out.pop(op.key, None)
                else:
                    out[op.key] = done.revision
            out.setdefault(POOL, 0)
        return out
