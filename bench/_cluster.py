"""Shared by the cluster benchmarks: real `shoal` processes on this machine and a Control client.

Each process has its own data dir, socket and port under a temporary directory; everything is
stopped by PID at the end (SIGTERM, then SIGKILL), and stray container processes of killed workers
are killed by the PIDs in their runtime state files.
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
from pathlib import Path

import grpc

from shoal.proto import control_pb2 as cpb
from shoal.proto import control_pb2_grpc as cgrpc

SHOAL = str(Path(sys.executable).parent / "shoal")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BenchCluster:
    def __init__(self, tmp: Path, heartbeat: float = 1.0) -> None:
        self.tmp = tmp
        self.addr = f"127.0.0.1:{free_port()}"
        self.sock = str(tmp / "manager.sock")
        self.procs: dict[str, subprocess.Popen] = {}
        self.token = ""
        self.manager_token = ""
        self.heartbeat = heartbeat
        self._stub: cgrpc.ControlStub | None = None

    def start(self, name: str, *args: str) -> subprocess.Popen:
        with open(self.tmp / f"{name}.log", "a") as log:
            p = subprocess.Popen([SHOAL, *args], stdout=log, stderr=log, start_new_session=True)
        self.procs[name] = p
        return p

    def start_manager(self, *extra: str) -> None:
        self.start("manager", "manager", "--data-dir", str(self.tmp / "m"), "--listen-addr", self.addr, "--socket", self.sock,
                   "--hostname", "bench-manager", "--heartbeat-period", str(self.heartbeat), "--log-level", "warning", *extra)
        log = self.tmp / "manager.log"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            m = re.search(r"--token (SHOAL-1-[a-z0-9-]+)", log.read_text())
            if m:
                self.token = m.group(1)
                self.manager_token = re.search(r"use the token (SHOAL-1-[a-z0-9-]+)", log.read_text()).group(1)  # type: ignore[union-attr]
                return
            if self.procs["manager"].poll() is not None:
                break
            time.sleep(0.1)
        raise SystemExit(f"manager did not start:\n{log.read_text()[-2000:]}")

    def worker_args(self, name: str) -> list[str]:
        return ["worker", "--join", self.addr, "--token", self.token, "--data-dir", str(self.tmp / name), "--hostname", name, "--log-level", "warning"]

    @property
    def control(self) -> cgrpc.ControlStub:
        if self._stub is None:
            self._stub = cgrpc.ControlStub(grpc.insecure_channel(f"unix://{self.sock}"))
        return self._stub

    def nodes(self) -> dict[str, tuple[str, int]]:
        """hostname -> (node id, status)."""
        return {n.description.hostname: (n.id, n.status.state) for n in self.control.ListNodes(cpb.ListNodesRequest(), timeout=10).nodes}

    def wait(self, cond, timeout: float, what: str, every: float = 0.05):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            res = cond()
            if res:
                return res
            time.sleep(every)
        raise SystemExit(f"timed out waiting for {what}")

    def kill_node(self, name: str) -> None:
        """kill -9 a worker, its runtime launcher and its containers (a host that vanished)."""
        p = self.procs.pop(name)
        d = str(self.tmp / name)
        victims = {p.pid}
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    if d.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                        victims.add(int(pid))
                except OSError:
                    pass
        for f in Path(d).glob("runtime/containers/*/state.json"):
            with_pid = json.loads(f.read_text()).get("pid")
            if with_pid:
                victims.add(int(with_pid))
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        p.wait()

    def stop(self) -> None:
        for p in reversed(list(self.procs.values())):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
