"""Driving a real cluster on this machine through the ``shoal`` CLI, as a user would.

The manager (with its embedded etcd) and a worker run as separate processes with their own data
dirs, socket and ports; teardown stops them by PID and checks nothing is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.timing import scaled, wait_until

SHOAL = str(Path(sys.executable).parent / "shoal")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ListRows:
    """``--format json`` rows of a list command, for a class with a ``shoal(*args)`` method (the CLI run)."""

    def json(self, *args: str) -> list[dict]:
        """A list command's rows (``--format json``: one JSON object per line, as docker prints them)."""
        return [json.loads(line) for line in self.shoal(*args, "--format", "json").stdout.splitlines()]

    def tasks(self, *args: str) -> list[dict]:
        """``svc ps``/``stack ps`` rows with the full task ID and error (``--no-trunc``), the name and error as
        the plain listing prints them (``web.1``, no quotes): what a test needs to find a task's files."""
        out = self.json(*args, "--no-trunc")
        for row in out:
            row["Name"] = row["Name"].removesuffix("." + row["ID"])
            row["Error"] = row["Error"].removeprefix('"').removesuffix('"')
        return out


@dataclass
class CliCluster(ListRows):
    tmp: Path
    socket: str
    addr: str
    procs: list[subprocess.Popen] = field(default_factory=list)
    token: str = ""

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SHOAL_HOST": f"unix://{self.socket}"}

    def shoal(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        res = subprocess.run([SHOAL, *args], env=self.env, capture_output=True, text=True, timeout=scaled(timeout))
        if check and res.returncode != 0:
            raise AssertionError(f"shoal {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res

    def start(self, *args: str, name: str) -> subprocess.Popen:
        """Start ``shoal ARGS``; nodes run with --no-network: they share this machine's namespace, where
        their bridges and nft tables would meet (network tests use a lab, one namespace per node)."""
        if args and args[0] in ("manager", "worker") and "--no-network" not in args:
            args = (args[0], "--no-network", *args[1:])
        with open(self.tmp / f"{name}.out", "w") as out, open(self.tmp / f"{name}.log", "w") as err:
            p = subprocess.Popen([SHOAL, *args], stdout=out, stderr=err, env=self.env, start_new_session=True)
        self.procs.append(p)
        return p

    def wait_for(self, cond, timeout: float = 20.0, what: str = "condition"):
        return wait_until(cond, timeout, what, detail=self._logs)

    def _logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.tmp.glob("*.log")))

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(scaled(20))
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def containers(c: CliCluster) -> dict[str, dict]:
    """Container state files of both nodes' runtimes, by container (= task) id."""
    out = {}
    for f in c.tmp.glob("*/runtime/containers/*/state.json"):
        try:
            out[f.parent.name] = json.loads(f.read_text())
        except FileNotFoundError:  # deleted between the listing and the read: gone
            continue
    return out


def running_pids(c: CliCluster, service: str) -> dict[str, int]:
    tasks = {t["ID"]: t for t in c.tasks("svc", "ps", service) if t["DesiredState"] == "Running"}
    states = containers(c)
    return {tid: states[tid]["pid"] for tid in tasks if tid in states and states[tid]["status"] == "running"}


def runtime_leftovers(runtime: Path, task_ids: list[str]) -> list[str]:
    """What of a node's runtime (its state dir: ``DATA/runtime``) is still there: a launcher process, a
    container, a cgroup of one of ``task_ids`` (any hierarchy, v1 or v2)."""
    left = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, NotADirectoryError, PermissionError):
            continue
        if b"shoal.runtime.launcher" in argv and str(runtime).encode() in argv:
            left.append(f"launcher process {proc.name}")
    left += [f"container {d.name}" for d in (runtime / "containers").glob("*")]
    left += [f"cgroup {d}" for tid in task_ids for d in Path("/sys/fs/cgroup").glob(f"**/{tid}")]
    return left
