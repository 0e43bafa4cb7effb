"""Shared by the lab benchmarks: a `shoal lab` of its own under a temp dir, driven through the CLI.

Commands run as a user types them (``shoal --lab NAME ...``); reads that poll in a tight loop go to a
manager's unix socket with gRPC directly (a CLI start-up per poll would blur the figures). Every
daemon's JSON log can be read back as timed events, to say where a figure's time went.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

SHOAL = str(Path(sys.executable).parent / "shoal")
T = TypeVar("T")


class Lab:
    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        drop = ("SHOAL_HOST", "SHOAL_LAB")
        self.env = {**{k: v for k, v in os.environ.items() if k not in drop}, "SHOAL_LAB_DIR": str(root)}

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        res = subprocess.run([SHOAL, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise RuntimeError(f"shoal {' '.join(args)} failed ({res.returncode}): {res.stdout}{res.stderr}")
        return res

    def lab(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """``shoal lab CMD ... --name NAME``."""
        return self.run("lab", *args, "--name", self.name, timeout=timeout)

    def shoal(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("--lab", self.name, *args, check=check, timeout=60)

    def json(self, *args: str) -> list[dict]:
        """A list command's rows: ``--format json`` prints one JSON object per line, as docker does."""
        res = self.shoal(*args, "--format", "json", check=False)
        return [json.loads(line) for line in res.stdout.splitlines() if line.strip()] if res.returncode == 0 else []

    def running(self, service: str) -> int:
        tasks = self.json("svc", "ps", service)
        return sum(1 for t in tasks if t["DesiredState"] == "Running" and t["CurrentState"].startswith("Running"))

    def leader(self) -> str:
        return next(n["Hostname"] for n in self.json("node", "ls") if n["ManagerStatus"] == "Leader")

    def fault(self, action: str, host: str) -> tuple[float, float]:
        """A lab fault (``kill``, ``partition``, ...) done in this process, so that no CLI start-up stands
        between the figure's start and the fault; returns (monotonic, wall) time when it began."""
        os.environ["SHOAL_LAB_DIR"] = str(self.root)
        from shoal.lab import faults
        from shoal.lab.state import check_name, load, locked

        with locked(check_name(self.name)):
            lab = load(self.name)
            node = lab.node(host)
            began = time.monotonic(), time.time()
            getattr(faults, action)(lab, node)
        return began

    def state(self) -> dict[str, Any]:
        return json.loads((self.root / self.name / "lab.json").read_text())

    def socket(self, host: str) -> str:
        return next(n["socket"] for n in self.state()["nodes"] if n["name"] == host)

    def until(self, cond: Callable[[], T], timeout: float, what: str, every: float = 0.05) -> T:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = cond()
            if result:
                return result
            time.sleep(every)
        raise RuntimeError(f"{what} not reached within {timeout}s")

    def log_events(self, after: float) -> list[tuple[float, str, dict]]:
        """(wall time, host, record) of every daemon log line after ``after``, in time order."""
        out = []
        for f in self.root.glob(f"{self.name}/*/daemon.log"):
            for line in f.read_text(errors="replace").splitlines():
                try:
                    rec = json.loads(line)
                    ts = datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00")).timestamp()
                except (ValueError, KeyError, TypeError):
                    continue
                if ts > after:
                    out.append((ts, f.parent.name, rec))
        return sorted(out, key=lambda e: e[0])
