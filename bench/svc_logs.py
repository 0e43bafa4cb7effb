#!/usr/bin/env python3
"""``shoal svc logs`` throughput: every line of a service's tasks on several nodes, through the CLI.

    .venv/bin/python bench/svc_logs.py [--workers 2] [--replicas 3] [--lines 20000]

A local cluster (a manager and WORKERS workers as processes on this machine, --no-network) runs
``chatty``: REPLICAS tasks that each print LINES lines and then sleep. Once every task has written its
last line, ``shoal svc logs chatty`` (no -f: the manager gathers every node's lines, orders them by
time and sends them) is timed to its end, output to a pipe. Last line: ``tasks=... lines=... seconds=...
lines_per_s=...``; then the same for ``--tail 1`` (one line per task: the cost of the round trip).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from _cluster import SHOAL, BenchCluster

from shoal.proto import types_pb2 as pb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--lines", type=int, default=20000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as tmp:
        c = BenchCluster(Path(tmp))
        env = {**os.environ, "SHOAL_HOST": f"unix://{c.sock}"}

        def shoal(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
            return subprocess.run([SHOAL, *args], env=env, capture_output=True, text=True, timeout=timeout, check=True)

        try:
            c.start_manager("--no-network")
            for i in range(a.workers):
                c.start(f"w{i}", *c.worker_args(f"w{i}"), "--no-network")
            c.wait(lambda: sum(st == pb.NodeStatus.READY for _id, st in c.nodes().values()) == a.workers + 1, 60, "nodes ready", 0.2)
            script = f"i=0; while [ $i -lt {a.lines} ]; do echo \"line $i of a chatty task\"; i=$((i+1)); done; sleep 100000"
            shoal("svc", "create", "--name", "chatty", "--replicas", str(a.replicas), "--stop-grace-period", "1s", "host", "sh", "-c", script)
            last = f"line {a.lines - 1} of a chatty task"
            c.wait(lambda: shoal("svc", "logs", "--tail", "1", "chatty").stdout.count(last) == a.replicas, 120, "every task's last line", 0.5)
            for label, args in (("all", ()), ("tail1", ("--tail", "1"))):
                t0 = time.perf_counter()
                out = shoal("svc", "logs", *args, "chatty").stdout
                secs = time.perf_counter() - t0
                n = out.count("\n")
                print(f"[{label}] tasks={a.replicas} lines={n} seconds={secs:.2f} lines_per_s={n / secs:,.0f}")
            print(f"command: .venv/bin/python bench/svc_logs.py --workers {a.workers} --replicas {a.replicas} --lines {a.lines}")
        finally:
            c.stop()


if __name__ == "__main__":
    main()
