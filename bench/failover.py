#!/usr/bin/env python3
"""Leader failover: with 3 managers on one etcd, kill -9 the leader, then ``svc scale`` at once.

    .venv/bin/python bench/failover.py [--runs 10]

Three manager processes (the multi-manager integration test's helper) share an embedded etcd in a
temp dir; two fake agents know every manager. Each run: SIGKILL the leader, immediately scale the
service up by 2 through a surviving manager's control API, and time until every replica runs
(which needs a new leader: the old lease expires after at most its TTL, 3 s by default). The killed
manager is restarted before the next run. Prints each run and the median; last line
``failover_scale_converged_s_p50=...``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shoal.proto import control_pb2 as cpb  # noqa: E402
from shoal.proto import types_pb2 as pb  # noqa: E402
from tests.fixtures.managers import ManagerProcs, _agents, _leader, _n, until  # noqa: E402
from tests.integration.test_control_plane import spec  # noqa: E402

NAMES = ("m1", "m2", "m3")


async def run(runs: int) -> list[float]:
    from shoal.manager.store.embedded import EmbeddedEtcd
    from shoal.manager.store.etcd import connect

    tmp = Path(tempfile.mkdtemp(prefix="shoal-bench-failover-"))
    etcd = EmbeddedEtcd(tmp / "etcd")
    await etcd.start()
    m = ManagerProcs(tmp, etcd.endpoint, etcd.client_tls)
    agents: list[asyncio.Task] = []
    times = []
    try:
        store = await connect([etcd.endpoint], tls=etcd.client_tls)
        for name in NAMES:
            await m.start(name)
        agents = await _agents(m, tmp, 2)
        replicas = 2
        await m.control("m1").CreateService(cpb.CreateServiceRequest(spec=spec(replicas=replicas)))
        await until(lambda: _n(m.control("m1"), replicas), timeout=30)
        for i in range(runs):
            leader = await until(lambda: _leader(store))
            victim = next(n for n in NAMES if json.loads((tmp / n / "id").read_text()) == leader)  # joiners get the cluster's ids
            other = next(n for n in NAMES if n != victim)
            ctl = m.control(other)
            svc = (await ctl.GetService(cpb.GetServiceRequest(service_id="web"))).service
            s = pb.ServiceSpec()
            s.CopyFrom(svc.spec)
            replicas += 2
            s.replicas = replicas
            m.kill(victim)
            t0 = time.monotonic()
            await ctl.UpdateService(cpb.UpdateServiceRequest(service_id=svc.id, version=svc.meta.version, spec=s))
            await until(lambda ctl=ctl, n=replicas: _n(ctl, n), timeout=30)
            dt = time.monotonic() - t0
            times.append(dt)
            print(f"  run {i + 1}: leader {victim} killed, scale to {replicas} converged in {dt:.2f} s", flush=True)
            await m.start(victim)
        await store.close()
    finally:
        for t in agents:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        m.stop()
        await etcd.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return times


def report(times: list[float]) -> None:
    """p50, p95 and max (and the load the machine was under), the figures' last line as the docstring says."""
    p95 = statistics.quantiles(times, n=20, method="inclusive")[-1] if len(times) > 1 else times[0]
    p50 = statistics.median(times)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"min {min(times):.2f} s, p50 {p50:.2f} s, p95 {p95:.2f} s, max {max(times):.2f} s over {len(times)} runs (load average {load})")
    print(f"failover_scale_converged_s_p50={p50:.2f} failover_scale_converged_s_max={max(times):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=None, help="10, or 5 with --lab")
    ap.add_argument("--lab", action="store_true", help="a lab of 3 managers and 2 workers; kill -9 of the leader's host")
    a = ap.parse_args()
    from shoal import log

    log.setup("warning")
    print(f"command: {' '.join(sys.argv)}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if a.lab:
        from bench.failover_lab import run_lab

        times = run_lab(a.runs or 5)
    else:
        times = asyncio.run(run(a.runs or 10))
    report(times)


if __name__ == "__main__":
    main()
