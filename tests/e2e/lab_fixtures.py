"""Lab clusters for e2e tests, driven only through the ``shoal`` CLI (``shoal lab ...``).

Each lab gets a name unique to this test process and keeps its state under the test's own
directory (``SHOAL_LAB_DIR``), so parallel runs and a developer's own labs never meet. ``traces``
lists whatever of a lab is still on the machine (namespaces, links, mounts, cgroups, processes,
files): the teardown runs ``lab down`` and asserts it is empty, even when a test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.clicluster import SHOAL, ListRows
from tests.timing import scaled, wait_until


def needs_lab() -> None:
    if os.geteuid() != 0:
        pytest.skip(reason="needs root: lab hosts are network namespaces with cgroups")
    for tool in ("etcd", "ip"):
        if shutil.which(tool) is None:
            pytest.skip(reason=f"{tool} not found; run make setup")


def unique_name(base: str) -> str:
    return f"{base}{os.getpid() % 100000}{os.environ.get('PYTEST_XDIST_WORKER', '').removeprefix('gw')}"


@dataclass
class LabCli(ListRows):
    name: str
    root: Path
    up_seconds: float = 0.0

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("SHOAL_HOST", "SHOAL_LAB")}
        return {**env, "SHOAL_LAB_DIR": str(self.root)}

    @property
    def dir(self) -> Path:
        return self.root / self.name

    def run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        res = subprocess.run([SHOAL, *args], env=self.env, capture_output=True, text=True, timeout=scaled(timeout))
        if check and res.returncode != 0:
            raise AssertionError(f"shoal {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}\n{self.logs()}")
        return res

    def shoal(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """A cluster command through the global --lab option."""
        return self.run("--lab", self.name, *args, check=check)

    def lab(self, command: str, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.run("lab", command, "--name", self.name, *args, check=check, timeout=timeout)

    def node_status(self) -> dict[str, str]:
        return {n["Hostname"]: n["Status"] for n in self.json("node", "ls")}

    def state(self) -> dict:
        return json.loads((self.dir / "lab.json").read_text())

    def wait_for(self, cond: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
        return wait_until(cond, timeout, what, detail=self.logs)

    def etcd_tls_refusals(self) -> list[str]:
        """The etcd members' log lines of a peer certificate refused (a member whose trust pool was read from
        a half-written CA file refuses them all, for its lifetime)."""
        lines = (line for p in sorted(self.dir.glob("*/etcd.log")) for line in p.read_text(errors="replace").splitlines())
        return [line[:300] for line in lines if refuses_a_certificate(line)]

    def logs(self) -> str:
        return "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-2000:]}" for p in sorted(self.dir.glob("*/*.log")))


def refuses_a_certificate(line: str) -> bool:
    """An etcd log line of a TLS handshake it refused over a certificate. A "rejected connection" whose error is
    EOF or a reset is a client that hung up before its handshake (a port probe, a cancelled dial): no trust
    problem, and CI saw a few of them from the host's side of the lab bridge."""
    if "bad certificate" in line or "unknown authority" in line:
        return True
    if "rejected connection" not in line:
        return False
    return not any(e in line for e in ('"error":"EOF"', "connection reset by peer", "broken pipe"))


def _mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


def traces(name: str, root: Path, state: dict) -> list[str]:
    """Everything of the lab still on the machine."""
    found = [f"netns {n}" for n in os.listdir("/run/netns") if n.startswith(f"shoal-{name}-")] if os.path.isdir("/run/netns") else []
    links = [state["bridge"], *(n["veth"] for n in state["nodes"])]
    found += [f"link {x}" for x in links if os.path.exists(f"/sys/class/net/{x}")]
    found += [f"mount {m}" for m in _mounts() if m.startswith(str(root / name)) or m.startswith(f"/run/netns/shoal-{name}-")]
    found += [f"cgroup {d}" for d in state["cgroups"] if os.path.exists(d)]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(root / name) in cmd:
            found.append(f"process {pid} {cmd.replace(chr(0), ' ')[:120]}")
    if (root / name).exists():
        found.append(f"dir {root / name}")
    return found


def lab_processes(lab: LabCli) -> list[int]:
    """Every process of the lab: the tasks of each host's cgroup subtree, and the recorded pids."""
    pids: set[int] = set()
    for node in lab.state()["nodes"]:
        for top in node["cgroups"]:
            for d, _, _ in os.walk(top):
                with open(os.path.join(d, "cgroup.procs")) as f:
                    pids.update(int(p) for p in f.read().split())
        pids.update(p["pid"] for p in (node["daemon"], node["etcd"]) if p)
    return sorted(pids)


@contextmanager
def running_lab(root: Path, base: str, *up_args: str, up_timeout: float = 60) -> Iterator[LabCli]:
    """``lab up`` with these arguments (within ``up_timeout`` s); ``lab down`` afterwards, then assert that
    nothing is left."""
    needs_lab()
    lab = LabCli(unique_name(base), root)
    state: dict = {}
    try:
        t0 = time.monotonic()
        lab.lab("up", *up_args, timeout=up_timeout)
        lab.up_seconds = time.monotonic() - t0
        state = lab.state()
        yield lab
    finally:
        if not state and (lab.dir / "lab.json").exists():
            state = lab.state()
        res = lab.lab("down", check=False)
        if state:
            left = traces(lab.name, root, state)
            assert not left, f"lab down left: {left}\n{res.stdout}{res.stderr}"
