#!/usr/bin/env python3
"""A start-first rolling update of 60 health-checked replicas on a lab, with a client on the routing mesh.

    .venv/bin/python bench/update.py [--replicas 60] [--parallelism 10] [--workers 2] [--interval 1s] [--trace]

A lab (1 drained manager, WORKERS workers) runs ``upd``: REPLICAS tasks of the demo image (busybox
httpd), port 8096 published, a health check fetching its own page every INTERVAL (docker's rule: the
first probe runs one interval after the start). ``svc update --env-add V=2`` with parallelism
PARALLELISM, delay 0, order start-first and a 1 s monitor is timed until it returns (the CLI waits,
as docker's does, until the supervisor reports the update completed). Meanwhile a client on this
machine requests the manager host's published port (the mesh: that host runs no task) one request
after another, each on a new connection, and counts the failures.

The least the health checks allow: every batch of PARALLELISM replacements needs one probe interval
before its tasks count as healthy, so ceil(REPLICAS / PARALLELISM) intervals, plus the monitor
period after the last batch. Last line: ``replicas=... update_s=... failed_requests=... requests=...
min_s=... ratio=...`` (ratio = update_s / min_s; 1.0 would be no overhead at all).

It also prints the CPU seconds each lab host's cgroup used during the update (its daemon, etcd, the
launchers and the tasks): a figure that survives a loaded machine better than the update's duration.

``--trace`` starts the nodes with debug logging and prints, before that line, where the time went
batch by batch (``bench/timeline.py``); the debug lines cost the nodes a little, so compare figures
of traced runs with traced runs only. It also traces every TCP reset in the lab's hosts
(``bench/rsttrace.py``) and prints, under each failed batch of requests, the resets of that moment:
where a refused request's reset came from.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import rsttrace, timeline  # noqa: E402
from shoal import units  # noqa: E402
from tests.fixtures.httpclient import client_argv  # noqa: E402

SHOAL = str(Path(sys.executable).parent / "shoal")
NAME = f"bupd{os.getpid() % 10000}"
PORT = 8096
MONITOR_S = 1.0
BUILD = Path(__file__).resolve().parents[1] / "deploy/demos/lb/build_image.py"


class LabRun:
    def __init__(self, trace: bool = False) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="shoal-bench-update-"))
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("SHOAL_HOST", "SHOAL_LAB", "SHOAL_LOG_LEVEL")},
            "SHOAL_LAB_DIR": str(self.root),
        }
        if trace:
            self.env["SHOAL_LOG_LEVEL"] = "debug"  # the lab's daemons inherit it (see bench/timeline.py)

    def run(self, *args: str, timeout: float = 600) -> str:
        res = subprocess.run([SHOAL, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(f"shoal {' '.join(args)} failed ({res.returncode}): {res.stdout}{res.stderr}")
        return res.stdout

    def shoal(self, *args: str, timeout: float = 600) -> str:
        return self.run("--lab", NAME, *args, timeout=timeout)

    def hosts(self) -> dict[str, str]:
        """Each lab host's name and network namespace."""
        state = json.loads((self.root / NAME / "lab.json").read_text())
        return {n["name"]: n["netns"] for n in state["nodes"]}

    def manager_addr(self) -> str:
        state = json.loads((self.root / NAME / "lab.json").read_text())
        return next(n["addr"] for n in state["nodes"] if n["name"] == "manager1")

    def cpu_s(self) -> dict[str, float]:
        """CPU seconds each lab host's cgroup used so far (its daemon, etcd, launchers and tasks)."""
        state = json.loads((self.root / NAME / "lab.json").read_text())
        return {n["name"]: used for n in state["nodes"] if (used := cgroup_cpu_s(n.get("cgroups") or [])) is not None}

    def running(self, service: str) -> int:
        rows = [json.loads(line) for line in self.shoal("svc", "ps", service, "--format", "json").splitlines() if line.strip()]  # one row a line
        return sum(r["DesiredState"] == "Running" and r["CurrentState"].startswith("Running") for r in rows)


def cgroup_cpu_s(dirs: list[str]) -> float | None:
    """The CPU time of a cgroup, from whichever hierarchy has it (v1 cpuacct, v2 cpu.stat)."""
    for d in dirs:
        usage, stat = Path(d) / "cpuacct.usage", Path(d) / "cpu.stat"
        if usage.exists():
            return int(usage.read_text()) / 1e9
        if stat.exists():
            for line in stat.read_text().splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) / 1e6
    return None


class Poller(threading.Thread):
    def __init__(self, host: str) -> None:
        super().__init__(daemon=True)
        self.host = host
        self.answers: list[str] = []
        self.failed_at: list[tuple[float, float, list[str]]] = []  # (from, to, errors) of each run with failures
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            began = time.time()
            out = subprocess.run(
                client_argv(self.host, PORT, 20, "/cgi-bin/whoami"),
                capture_output=True,
                text=True,
                timeout=120,
            ).stdout
            got = json.loads(out)
            self.answers += got
            if errors := [a for a in got if a.startswith("error")]:
                self.failed_at.append((began, time.time(), errors))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replicas", type=int, default=60)
    ap.add_argument("--parallelism", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--interval", default="1s")
    ap.add_argument("--trace", action="store_true", help="debug-log the nodes and print where the time went")
    args = ap.parse_args()
    interval_s = units.parse_duration(args.interval) / 1e9
    print(f"$ {' '.join([sys.executable, *sys.argv])}", flush=True)
    lab = LabRun(args.trace)
    rst: rsttrace.RstTrace | None = None
    try:
        lab.run("lab", "up", "--name", NAME, "--managers", "1", "--workers", str(args.workers))
        if args.trace:
            rst = rsttrace.RstTrace(lab.hosts(), Path(tempfile.mkdtemp(prefix="shoal-update-rst-")))
        tar = lab.root / "lb.tar"
        subprocess.run([sys.executable, str(BUILD), str(tar)], check=True, capture_output=True)
        lab.shoal("image", "load", "--cluster", "-i", str(tar))
        health = [
            "--health-cmd",
            "wget -q -O /dev/null http://127.0.0.1/cgi-bin/whoami",
            "--health-interval",
            args.interval,
            "--health-retries",
            "3",
        ]
        lab.shoal(
            "svc",
            "create",
            "-q",
            "--name",
            "upd",
            "--replicas",
            str(args.replicas),
            "-p",
            f"{PORT}:80",
            "--stop-grace-period",
            "2s",
            *health,
            "shoal-demo-lb",
        )
        print(f"{lab.running('upd')} replicas running and healthy", flush=True)
        poller = Poller(lab.manager_addr())
        poller.start()
        time.sleep(2)
        cmd = ["svc", "update", "-q", "--env-add", "V=2", "--update-order", "start-first", "--update-parallelism", str(args.parallelism),
               "--update-delay", "0s", "--update-monitor", f"{MONITOR_S:g}s", "upd"]  # fmt: skip
        print(f"$ shoal --lab {NAME} {' '.join(cmd)}", flush=True)
        t0, wall0, cpu0 = time.perf_counter(), time.time(), lab.cpu_s()
        lab.shoal(*cmd, timeout=1200)
        update_s = time.perf_counter() - t0
        cpu = {n: used - cpu0.get(n, 0.0) for n, used in lab.cpu_s().items()}
        wall1 = wall0 + update_s
        time.sleep(1)
        poller.stop.set()
        poller.join(60)
        failed = [a for a in poller.answers if a.startswith("error")]
        min_s = math.ceil(args.replicas / args.parallelism) * interval_s + MONITOR_S
        if args.trace:
            print("\n".join(timeline.report(lab.root, "upd", wall0, wall1)), flush=True)
        print(
            f"{len(poller.answers)} requests through the mesh, {len(failed)} failed {sorted(set(failed))[:3]}"
        )
        print("CPU seconds per lab host during the update (its cgroup: daemon, etcd, launchers, tasks): "
              + " ".join(f"{n}={c:.2f}" for n, c in sorted(cpu.items())))
        resets = rst.files() if rst is not None else {}
        for began, ended, errors in poller.failed_at:  # to line up with a trace (times after the update began)
            print(f"  failed between {began - wall0:.2f} and {ended - wall0:.2f} s: {errors}")
            for r in rsttrace.resets(resets, began - 0.5, ended + 0.5):
                print(f"    reset at {r.t - wall0:.3f} s on {r.host} ({r.chain}): {r.packet}")
        print(f"replicas={args.replicas} update_s={update_s:.2f} failed_requests={len(failed)} requests={len(poller.answers)} "
              f"min_s={min_s:.2f} ratio={update_s / min_s:.2f}")  # fmt: skip
    except Exception:
        for log in sorted(lab.root.glob("*/*/daemon.log")):  # what the nodes said, before lab down removes it
            print(f"--- {log}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:]), file=sys.stderr)
        raise
    finally:
        if rst is not None:
            rst.stop()
            print(f"resets traced: {rst.dir}", flush=True)
        if args.trace:  # the nodes' logs outlive the lab, for bench/timeline.py
            keep = Path(tempfile.mkdtemp(prefix="shoal-update-trace-"))
            for log in lab.root.glob("*/*/daemon.log"):  # (not rglob: containers' dirs vanish under a walk)
                (keep / log.parent.name).mkdir(exist_ok=True)
                (keep / log.parent.name / "daemon.log").write_bytes(log.read_bytes())
                launcher = log.parent / "runtime" / "launcher.log"  # SHOAL_RUNTIME_TRACE=1: the launcher's step times
                if launcher.exists():
                    (keep / log.parent.name / "launcher.log").write_bytes(launcher.read_bytes())
            print(f"trace kept: .venv/bin/python bench/timeline.py {keep}", flush=True)
        subprocess.run([SHOAL, "lab", "down", "--name", NAME], env=lab.env, capture_output=True, timeout=300)


if __name__ == "__main__":
    main()
