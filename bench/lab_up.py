#!/usr/bin/env python3
"""How long ``shoal lab up`` takes until every node is Ready, and ``lab down`` after it.

    .venv/bin/python bench/lab_up.py [-n 3] [--managers 1] [--workers 3]

Each round runs the CLI exactly as a user does (``shoal lab up --name ... --managers M --workers W``,
then ``shoal lab down``) in a throwaway SHOAL_LAB_DIR, timing the whole command from the outside.
Prints every round, the median and the worst, and the load average (other work on the machine
shows up in the figures), and ends with one ``key=value`` line. Needs root.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHOAL = str(Path(sys.executable).parent / "shoal")


def timed(args: list[str], env: dict[str, str]) -> float:
    t0 = time.monotonic()
    res = subprocess.run([SHOAL, *args], env=env, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t0
    if res.returncode != 0:
        sys.exit(f"shoal {' '.join(args)} failed:\n{res.stdout}{res.stderr}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=3, help="rounds")
    ap.add_argument("--managers", type=int, default=1)
    ap.add_argument("--workers", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    ups, downs = [], []
    with tempfile.TemporaryDirectory(prefix="shoal-lab-bench-") as root:
        env = {**os.environ, "SHOAL_LAB_DIR": root}
        env.pop("SHOAL_HOST", None)
        name = f"bench{os.getpid() % 10000}"
        for i in range(args.n):
            up = timed(["lab", "up", "--name", name, "--managers", str(args.managers), "--workers", str(args.workers)], env)
            down = timed(["lab", "down", "--name", name], env)
            ups.append(up)
            downs.append(down)
            print(f"round {i + 1}: lab up {up:.2f}s (all {args.managers + args.workers} nodes Ready), lab down {down:.2f}s")
    load = os.getloadavg()[0]
    print(f"\ncommand: {' '.join(sys.argv)}")
    print(f"lab up   median {statistics.median(ups):.2f}s  max {max(ups):.2f}s")
    print(f"lab down median {statistics.median(downs):.2f}s  max {max(downs):.2f}s")
    print(f"load average (1 min) at the end: {load:.2f} on {os.cpu_count()} cpus")
    print(
        f"lab_up_s_p50={statistics.median(ups):.2f} lab_up_s_max={max(ups):.2f} "
        f"lab_down_s_p50={statistics.median(downs):.2f} managers={args.managers} workers={args.workers} load1={load:.2f}"
    )


if __name__ == "__main__":
    main()
