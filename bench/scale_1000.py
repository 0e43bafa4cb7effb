#!/usr/bin/env python3
"""1,000 simulated nodes at 1 s heartbeats: the idle manager's CPU and memory, then 10,000 tasks.

    .venv/bin/python bench/scale_1000.py [--nodes 1000] [--procs 4] [--tasks 10000] [--idle-s 10] [--tasks-timeout 120]

A real `shoal manager` process (embedded etcd, drained so it runs no tasks, ``--no-network``, node
subnets from 10.128.0.0/9: the default /16 pool holds 256 node subnets) and the node simulator
(bench/nodesim.py: real agents over mutual TLS with the fake executor) in a few processes. Once all
nodes are ready and the manager has settled, the CPU (% of one core; utime+stime from /proc over
``--idle-s``) of the manager and of its embedded etcd are sampled, and their sum is the idle figure
(etcd is part of what a manager costs); RSS is taken then (idle) and, sampled every 0.5 s, at its
peak while the ``--tasks`` replicas of one service are created and started. The task phase is
bounded by ``--tasks-timeout``: past it the bench says how many ran instead of failing (on an
overloaded machine the figure is the count, not a time). Leader changes (elections after the first,
and "lost leadership" lines) and nodes marked down are counted from the manager's log. Targets:
idle CPU <= 25%, RSS <= 300 MB, 10,000 tasks RUNNING within 15 s, no leader change. Last line:
``nodes=1000 idle_manager_cpu_pct=... manager_rss_mb=... peak_rss_mb=... tasks=10000 all_running_s=... leader_changes=0``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import grpc  # noqa: E402
import nodesim  # noqa: E402
from _cluster import BenchCluster  # noqa: E402

from shoal.proto import control_pb2 as cpb  # noqa: E402
from shoal.proto import types_pb2 as pb  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def etcd_pid(manager_pid: int) -> int | None:
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                st = (p / "stat").read_text()
                if int(st.rsplit(")", 1)[1].split()[1]) == manager_pid and b"etcd" in (p / "cmdline").read_bytes():
                    return int(p.name)
            except (OSError, ValueError):
                pass
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--tasks", type=int, default=10000)
    ap.add_argument("--idle-s", type=float, default=10.0)
    ap.add_argument("--tasks-timeout", type=float, default=120.0, help="how long the task phase may take before the bench reports the count")
    ap.add_argument("--keep-log", type=Path, help="copy the manager's log here at the end, the simulators' beside it (.sim.log); SHOAL_LOOP_WATCH_S=0.5 adds where their loops stalled")
    a = ap.parse_args()
    print(f"command: {' '.join(sys.argv)}")
    with tempfile.TemporaryDirectory(prefix="shoal-scale-") as d:
        c = BenchCluster(Path(d))
        sims = []
        try:
            # no node networking on this host for the bench's own manager node; node subnets from a pool
            # with room for the nodes (the default /16 holds 256 /24s)
            c.start_manager("--availability", "drain", "--no-network", "--default-addr-pool", "10.128.0.0/9")
            t0 = time.monotonic()
            sims = nodesim.spawn(c.addr, c.token, a.nodes, a.procs, Path(d) / "sim", Path(d) / "sim.log")
            for s in sims:
                line = s.stdout.readline()  # type: ignore[union-attr]
                if not line.startswith("ready"):
                    raise SystemExit(f"simulator failed:\n{(Path(d) / 'sim.log').read_text()[-3000:]}")
            c.wait(lambda: sum(st == pb.NodeStatus.READY for _i, st in c.nodes().values()) >= a.nodes + 1, 120, "nodes ready", 0.5)
            print(f"{a.nodes} simulated nodes joined and ready in {time.monotonic() - t0:.1f}s ({a.procs} simulator processes)")
            time.sleep(5)  # settle: joins done, leases and watches steady
            mpid = c.procs["manager"].pid
            epid = etcd_pid(mpid)
            c0, e0, w0 = cpu_s(mpid), cpu_s(epid) if epid else 0.0, time.monotonic()
            time.sleep(a.idle_s)
            wall = time.monotonic() - w0
            mcpu = (cpu_s(mpid) - c0) / wall * 100
            ecpu = ((cpu_s(epid) - e0) / wall * 100) if epid else 0.0
            cpu = mcpu + ecpu
            rss = rss_mb(mpid)
            erss = rss_mb(epid) if epid else 0.0
            print(f"idle over {wall:.0f}s: {cpu:.1f}% of one core = manager {mcpu:.1f}% + its etcd {ecpu:.1f}%; "
                  f"rss manager {rss:.0f} MB, etcd {erss:.0f} MB (targets: <= 25%, <= 300 MB)")

            spec = pb.ServiceSpec(name="scale", replicas=a.tasks)
            spec.container.image = "host"
            spec.container.args.extend(["sleep", "100000"])
            t1 = time.monotonic()
            c.control.CreateService(cpb.CreateServiceRequest(spec=spec), timeout=30)

            def running() -> int:
                s = c.control.ListServices(cpb.ListServicesRequest(), timeout=30)
                return sum(v.running for v in s.summaries.values())

            peak, n, took = rss, 0, None
            deadline = t1 + a.tasks_timeout
            while time.monotonic() < deadline:
                peak = max(peak, rss_mb(mpid))
                try:
                    n = running()
                except grpc.RpcError:
                    pass  # a manager too busy to answer within the call's deadline: ask again
                if n >= a.tasks:
                    took = time.monotonic() - t1
                    break
                time.sleep(0.5)
            try:
                ready = sum(st == pb.NodeStatus.READY for _i, st in c.nodes().values()) - 1
            except grpc.RpcError:  # a manager too busy to answer: say so rather than lose the figures
                ready = -1
            if took is not None:
                print(f"{a.tasks} tasks all RUNNING {took:.1f}s after create (target <= 15 s); ", end="")
            else:
                print(f"{n} of {a.tasks} tasks RUNNING after {a.tasks_timeout:g} s (bounded; target: all within 15 s); ", end="")
            print(f"manager rss peak {peak:.0f} MB, now {rss_mb(mpid):.0f} MB; {ready}/{a.nodes} nodes still ready")
            log_text = (Path(d) / "manager.log").read_text()
            stalls = [float(m) for m in re.findall(r'"stall_s": ([0-9.]+), "event": "event loop stalled', log_text)]  # the dispatcher's (not the sampler's)
            changes = log_text.count("lost leadership")
            print(f"manager event loop stalls > {0.5:g} s: {len(stalls)} (longest {max(stalls, default=0):.2f} s); "
                  f"nodes marked down: {log_text.count('marking it down') + log_text.count('marking node down')}; "
                  f"leader changes (leadership lost): {changes}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            all_running = f"{took:.1f}" if took is not None else f"timeout({n})"
            print(f"nodes={a.nodes} idle_manager_cpu_pct={cpu:.1f} manager_rss_mb={rss:.0f} peak_rss_mb={peak:.0f} "
                  f"tasks={a.tasks} all_running_s={all_running} leader_changes={changes}")
        except BaseException:
            lines = [ln for ln in (Path(d) / "manager.log").read_text().splitlines() if "LeaseNotFound" not in ln]
            print("manager log (tail):\n" + "\n".join(lines[-30:]), file=sys.stderr)
            raise
        finally:
            for s in sims:
                s.terminate()
            for s in sims:
                s.wait()
            c.stop()
            if a.keep_log:
                shutil.copyfile(Path(d) / "manager.log", a.keep_log)
                shutil.copyfile(Path(d) / "sim.log", a.keep_log.with_suffix(".sim.log"))


if __name__ == "__main__":
    main()
