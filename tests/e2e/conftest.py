"""A real two-node cluster on this machine, driven only through the ``shoal`` CLI.

The manager (with its embedded etcd) and a worker run as separate processes with their own data
dirs, socket and ports; teardown stops them by PID and checks nothing is left behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SHOAL = str(Path(sys.executable).parent / "shoal")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class CliCluster:
    tmp: Path
    socket: str
    addr: str
    procs: list[subprocess.Popen] = field(default_factory=list)
    token: str = ""

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SHOAL_HOST": f"unix://{self.socket}"}

    def shoal(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        res = subprocess.run([SHOAL, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"shoal {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res

    def json(self, *args: str) -> list[dict]:
        return json.loads(self.shoal(*args, "--format", "json").stdout)

    def start(self, *args: str, name: str) -> subprocess.Popen:
        with open(self.tmp / f"{name}.out", "w") as out, open(self.tmp / f"{name}.log", "w") as err:
            p = subprocess.Popen([SHOAL, *args], stdout=out, stderr=err, env=self.env, start_new_session=True)
        self.procs.append(p)
        return p

    def wait_for(self, cond, timeout: float = 20.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            res = cond()
            if res:
                return res
            time.sleep(0.1)
        logs = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.tmp.glob("*.log")))
        raise AssertionError(f"{what} not reached within {timeout}s\n{logs}")

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def _needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: containers use namespaces and cgroups")
    import shutil

    if shutil.which("etcd") is None:
        pytest.skip("etcd binary not found; run make setup")


@pytest.fixture
def cli_cluster(tmp_path: Path) -> Iterator[CliCluster]:
    _needs_root()
    port = free_port()
    c = CliCluster(tmp_path, str(tmp_path / "manager.sock"), f"127.0.0.1:{port}")
    try:
        c.start("manager", "--data-dir", str(tmp_path / "m"), "--listen-addr", c.addr, "--socket", c.socket, "--hostname", "e2e-manager", name="manager")
        out = tmp_path / "manager.out"
        c.token = c.wait_for(lambda: (m := re.search(r"--token (SHOAL-1-[a-z0-9-]+)", out.read_text())) and m.group(1), what="manager start")
        c.start("worker", "--join", c.addr, "--token", c.token, "--data-dir", str(tmp_path / "w"), "--hostname", "e2e-worker", name="worker")
        c.wait_for(lambda: [n["Status"] for n in c.json("node", "ls")] == ["Ready", "Ready"], what="2 ready nodes")
        yield c
    finally:
        c.stop()

