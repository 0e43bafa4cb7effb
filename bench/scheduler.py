#!/usr/bin/env python3
"""Scheduler throughput: the pure ``schedule`` and the leader's full pass committed to a real etcd.

    .venv/bin/python bench/scheduler.py [--nodes 5000] [--services 50] [--tasks 50000]

Cluster: NODES nodes in 5 zones x 20 racks, half labelled type=cpu, a fifth type=gpu, 8 CPUs and
32 GiB each. Services: TASKS/SERVICES pending tasks each; every service reserves 0.05 CPU and 64 MiB,
spreads over ``node.labels.zone``, and carries a constraint (type==cpu, zone!=z0, or rack!=r7 in turn).

pure: ``schedule(nodes, pending)`` on prebuilt snapshots (placements/s, median of --rounds).
committed: an embedded etcd in a temp dir holds the nodes, their sessions and the pending tasks; the
timed part is one scheduler pass as the leader runs it: snapshot from the cache, schedule, build the
ASSIGNED task updates, commit them in fenced 128-op transactions, until the cache has seen them.
Last line: ``nodes=... tasks=... pure_per_s=... committed_per_s=...``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shoal.manager.cache import ClusterCache  # noqa: E402
from shoal.manager.orchestrator.types import new_task  # noqa: E402
from shoal.manager.scheduler.loop import Scheduler  # noqa: E402
from shoal.manager.scheduler.schedule import schedule  # noqa: E402
from shoal.manager.store import keys  # noqa: E402
from shoal.manager.store.base import MAX_TXN_OPS, Put  # noqa: E402
from shoal.manager.store.writes import Fence, Writer  # noqa: E402
from shoal.proto import types_pb2 as pb  # noqa: E402
from shoal.views import NodeInfo

CONSTRAINTS = ["node.labels.type==cpu", "node.labels.zone!=z0", "node.labels.rack!=r7"]


def make_nodes(n: int) -> list[pb.Node]:
    out = []
    for i in range(n):
        node = pb.Node(id=f"node{i:06d}")
        node.description.hostname = f"host{i}"
        node.description.nano_cpus = 8 * 10**9
        node.description.memory_bytes = 32 << 30
        node.spec.labels.update({"zone": f"z{i % 5}", "rack": f"r{i % 20}", "type": "cpu" if i % 2 else ("gpu" if i % 5 == 0 else "mem")})
        out.append(node)
    return out


def make_tasks(services: int, tasks: int) -> tuple[list[pb.Service], list[pb.Task]]:
    svcs, out = [], []
    per = tasks // services
    for s in range(services):
        svc = pb.Service(id=f"svc{s:03d}", spec_version=1)
        sp = svc.spec
        sp.name = f"svc{s}"
        sp.replicas = per
        sp.container.image = "host"
        sp.container.args.extend(["sleep", "1000"])
        sp.resources.reservations.nano_cpus = 50_000_000
        sp.resources.reservations.memory_bytes = 64 << 20
        sp.placement.constraints.append(CONSTRAINTS[s % len(CONSTRAINTS)])
        sp.placement.preferences.add(spread="node.labels.zone")
        svcs.append(svc)
        out += [new_task(svc, slot) for slot in range(1, per + 1)]
    return svcs, out


def pure(nodes: list[pb.Node], tasks: list[pb.Task], rounds: int) -> float:
    rates = []
    for _ in range(rounds):
        infos = [NodeInfo(n, ready=True) for n in nodes]
        t0 = time.perf_counter()
        plan = schedule(infos, tasks)
        dt = time.perf_counter() - t0
        assert len(plan.assignments) == len(tasks), f"only {len(plan.assignments)} placed: {next(iter(plan.unassigned.values()), '')}"
        rates.append(len(tasks) / dt)
        print(f"  pure: {len(tasks)} placements in {dt * 1000:.0f} ms ({len(tasks) / dt:,.0f}/s)")
    return statistics.median(rates)


async def committed(nodes: list[pb.Node], svcs: list[pb.Service], tasks: list[pb.Task]) -> float:
    from shoal.manager.store.embedded import EmbeddedEtcd
    from shoal.manager.store.etcd import connect

    tmp = Path(tempfile.mkdtemp(prefix="shoal-bench-etcd-"))
    etcd = EmbeddedEtcd(tmp)
    await etcd.start()
    try:
        store = await connect([etcd.endpoint], tls=etcd.client_tls)
        puts = [Put(keys.key("node", n.id), keys.encode(n)) for n in nodes]
        puts += [Put(keys.key("session", n.id), keys.encode(pb.NodeSession(node_id=n.id))) for n in nodes]
        puts += [Put(keys.key("service", s.id), keys.encode(s)) for s in svcs]
        puts += [Put(keys.key("task", t.id), keys.encode(t)) for t in tasks]
        for i in range(0, len(puts), MAX_TXN_OPS):
            await store.txn([], puts[i : i + MAX_TXN_OPS])
        won = await store.txn([], [Put(keys.LEADER, b"bench")])
        cache = ClusterCache(store)
        follow = asyncio.create_task(cache.run())
        await cache.ready.wait()
        sched = Scheduler(cache, Writer(store, Fence(keys.LEADER, won.revision)))
        t0 = time.perf_counter()
        rev, _ = await sched._pass({"*"})
        t_commit = time.perf_counter() - t0
        await cache.wait_for(rev)
        dt = time.perf_counter() - t0
        assigned = sum(1 for v in cache.objects["task"].values() if v.obj.status.state == pb.ASSIGNED)  # type: ignore[attr-defined]
        assert assigned == len(tasks), f"only {assigned} of {len(tasks)} assigned"
        print(f"  committed: {assigned} tasks assigned in etcd in {dt * 1000:.0f} ms (pass returned after {t_commit * 1000:.0f} ms), {assigned / dt:,.0f}/s")
        follow.cancel()
        await store.close()
        return assigned / dt
    finally:
        await etcd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--services", type=int, default=50)
    ap.add_argument("--tasks", type=int, default=50000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    print(f"command: {' '.join(sys.argv)}")
    nodes = make_nodes(a.nodes)
    svcs, tasks = make_tasks(a.services, a.tasks)
    print(f"{len(nodes)} nodes, {len(svcs)} services, {len(tasks)} pending tasks (constraints, reservations, spread=node.labels.zone)")
    p = pure(nodes, tasks, a.rounds)
    c = asyncio.run(committed(nodes, svcs, tasks))
    print(f"nodes={len(nodes)} tasks={len(tasks)} pure_per_s={p:.0f} committed_per_s={c:.0f}")


if __name__ == "__main__":
    main()
