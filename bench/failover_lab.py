"""``bench/failover.py --lab``: leader failover on a real lab, 3 managers (an etcd member each) and 2 workers.

Each run kills the leader's whole host (``shoal lab kill``: every process on it gets SIGKILL, its etcd
member too), then times ``shoal --lab NAME svc scale web=N`` (which returns once N replicas run;
retried until a surviving manager accepts it), as a user at a terminal would see it: the CLI's own
start-up is part of the figure. Each run also says when the new leader was elected (from its log). The host is started again (and every node Ready) before the next run. The lab's
etcd runs with LAN timings (see shoal.lab.procs.etcd_argv), so an etcd leader lost with the host is
replaced in well under a second.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

SHOAL = str(Path(sys.executable).parent / "shoal")
NAME = f"bfo{os.getpid() % 10000}"


class Lab:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {**{k: v for k, v in os.environ.items() if k not in ("SHOAL_HOST", "SHOAL_LAB")}, "SHOAL_LAB_DIR": str(root)}

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        res = subprocess.run([SHOAL, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise RuntimeError(f"shoal {' '.join(args)} failed ({res.returncode}): {res.stdout}{res.stderr}")
        return res

    def shoal(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("--lab", NAME, *args, check=check, timeout=60)

    def json(self, *args: str) -> list[dict]:
        res = self.shoal(*args, "--format", "json", check=False)
        return json.loads(res.stdout) if res.returncode == 0 else []

    def running(self, service: str) -> int:
        return sum(1 for t in self.json("svc", "ps", service) if t["DesiredState"] == "Running" and t["CurrentState"].startswith("Running"))

    def leader(self) -> str:
        return next(n["Hostname"] for n in self.json("node", "ls") if n["ManagerStatus"] == "Leader")

    def until(self, cond, timeout: float, what: str):  # noqa: ANN001, ANN201
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with_result = cond()
            if with_result:
                return with_result
            time.sleep(0.05)
        raise RuntimeError(f"{what} not reached within {timeout}s")


def _elected_at(lab: Lab, after: float) -> float | None:
    """Wall-clock time of the first "elected leader" line after ``after`` in the managers' logs."""
    found = []
    for f in lab.root.glob(f"{NAME}/manager*/daemon.log"):
        for line in f.read_text(errors="replace").splitlines():
            if '"elected leader"' in line:
                ts = datetime.fromisoformat(json.loads(line)["timestamp"].replace("Z", "+00:00")).timestamp()
                if ts > after:
                    found.append(ts)
    return min(found, default=None)


def _one_run(lab: Lab, replicas: int) -> tuple[str, float, str]:
    """Kill the leader's host; time ``svc scale web=N`` (it waits for convergence) until it succeeds."""
    victim = lab.until(lab.leader, 30, "a leader")
    lab.run("lab", "kill", victim, "--name", NAME)
    t0, wall0 = time.monotonic(), time.time()
    lab.until(lambda: lab.shoal("svc", "scale", f"web={replicas}", check=False).returncode == 0, 30, "scale converged")
    dt = time.monotonic() - t0
    if lab.running("web") < replicas:
        raise RuntimeError(f"svc scale returned before {replicas} replicas ran")
    elected = _elected_at(lab, wall0)
    return victim, dt, f"new leader elected after {elected - wall0:.2f} s" if elected else "no election seen in the logs"


def run_lab(runs: int) -> list[float]:
    root = Path(tempfile.mkdtemp(prefix="shoal-bench-failover-lab-"))
    lab = Lab(root)
    times: list[float] = []
    try:
        lab.run("lab", "up", "--name", NAME, "--managers", "3", "--workers", "2", timeout=300)
        replicas = 2
        lab.shoal("svc", "create", "--detach", "--name", "web", "--replicas", str(replicas), "--constraint", "node.role==worker", "host", "sleep", "100000")
        lab.until(lambda: lab.running("web") >= replicas, 60, "2 running")
        for i in range(runs):
            replicas += 2
            victim, dt, note = _one_run(lab, replicas)
            times.append(dt)
            print(f"  run {i + 1}: leader host {victim} killed, scale to {replicas} accepted and converged in {dt:.2f} s ({note})", flush=True)
            lab.run("lab", "start", victim, "--name", NAME, timeout=120)
            lab.until(lambda: {n["Status"] for n in lab.json("node", "ls")} == {"Ready"}, 60, "every node Ready")
    finally:
        lab.run("lab", "down", "--name", NAME, check=False, timeout=300)
        shutil.rmtree(root, ignore_errors=True)
    return times
