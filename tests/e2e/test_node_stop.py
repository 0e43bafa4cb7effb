"""A stopped node leaves nothing running: SIGTERM stops every container, then the launcher.

One ``shoal manager`` (it runs tasks too, as a Swarm manager does) with 100 replicas of
``host sleep``; SIGTERM arrives in the middle of a mass removal or of a mass start. Afterwards no
container process, cgroup, mount or launcher of that node is left, as the README promises
(docker without live-restore). A second SIGTERM is the kill -9 path: what runs keeps running and
the next start re-adopts it. Everything is checked in /proc, the cgroup dirs and mountinfo.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e.clicluster import CliCluster, free_port
from tests.e2e.conftest import _needs_root

REPLICAS = 100


def _pids_in_cgroup(parent: str) -> list[int]:
    """Processes in any cgroup under ``parent`` (a container's PID 1 and its children)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "cgroup").read_text()
        except OSError:
            continue
        if f"/{parent}/" in text or text.rstrip().endswith(f"/{parent}"):
            found.append(int(entry.name))
    return found


def _launchers(state_dir: Path) -> list[int]:
    """Launcher processes serving ``state_dir``."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            argv = Path(entry.path, "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"shoal.runtime.launcher" in argv and str(state_dir).encode() in argv:
            found.append(int(entry.name))
    return found


def _cgroup_dirs(parent: str) -> list[str]:
    """``parent`` in any hierarchy (v1 controllers, the v2 mount, or a cgroup2-only root)."""
    roots = [Path("/sys/fs/cgroup"), *Path("/sys/fs/cgroup").iterdir()]
    return sorted(str(r / parent) for r in roots if (r / parent).exists())


def _mounts_under(path: Path) -> list[str]:
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(path) in line]


class OneNode:
    """One ``shoal manager`` process with its own data dir, socket, port and cgroup parent."""

    def __init__(self, tmp: Path) -> None:
        self.c = CliCluster(tmp, str(tmp / "manager.sock"), f"127.0.0.1:{free_port()}")
        self.data = tmp / "m"
        self.parent = f"shoal-e2e-stop-{os.getpid()}-{tmp.name[-12:]}"
        self.proc: subprocess.Popen | None = None

    def start(self, name: str = "manager") -> None:
        args = [
            "manager",
            "--data-dir",
            str(self.data),
            "--listen-addr",
            self.c.addr,
            "--socket",
            self.c.socket,
        ]
        self.proc = self.c.start(*args, "--hostname", "e2e-stop", "--cgroup-parent", self.parent, name=name)
        self.c.wait_for(
            lambda: " Ready " in self.c.shoal("node", "ls", check=False).stdout, timeout=60, what="node ready"
        )

    def containers(self) -> list[int]:
        return _pids_in_cgroup(self.parent)

    def sigterm(self, timeout: float = 120) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def sigterm_twice(self, log: str, timeout: float = 30) -> int:
        """SIGTERM, and again once the clean stop has begun (two at once would merge into one)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.c.wait_for(
            lambda: "containers are stopped and deleted" in (self.c.tmp / log).read_text(),
            what="the clean stop began",
        )
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def assert_nothing_left(self) -> None:
        assert self.containers() == [], "container processes survived the node"
        assert _launchers(self.data / "runtime") == [], "the launcher survived the node"
        assert _cgroup_dirs(self.parent) == [], "cgroups survived the node"
        assert _mounts_under(self.data) == [], "mounts survived the node"

    def cleanup(self) -> None:
        """After a failure or the kill -9 path: end what this test started, by pid."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in self.containers():
            with_suppress_kill(pid)
        for pid in _launchers(self.data / "runtime"):
            with_suppress_kill(pid, signal.SIGTERM)


def with_suppress_kill(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


@pytest.fixture
def node(tmp_path: Path):
    _needs_root()
    n = OneNode(tmp_path)
    try:
        n.start()
        yield n
    finally:
        n.cleanup()


def _create(n: OneNode, grace: str = "1s") -> None:
    n.c.shoal(
        "svc",
        "create",
        "--detach",
        "--name",
        "many",
        "--replicas",
        str(REPLICAS),
        "--stop-grace-period",
        grace,
        "host",
        "sleep",
        "100000",
        timeout=120,
    )


def test_sigterm_during_a_mass_removal_leaves_nothing_running(node: OneNode):
    _create(node)
    node.c.wait_for(lambda: len(node.containers()) >= REPLICAS, timeout=240, what=f"{REPLICAS} containers")
    node.c.shoal("svc", "rm", "many")
    running = len(node.containers())
    assert running > 0, "the stop must come in the middle of the removal"
    assert node.sigterm() == 0
    node.assert_nothing_left()


def test_sigterm_during_a_mass_start_leaves_nothing_running(node: OneNode):
    _create(node)
    node.c.wait_for(lambda: len(node.containers()) >= 10, timeout=240, what="the first containers")
    assert len(node.containers()) < REPLICAS, "the stop must come in the middle of the start"
    assert node.sigterm() == 0
    node.assert_nothing_left()


def test_a_second_sigterm_leaves_containers_running_for_the_next_start(node: OneNode):
    replicas = 5
    node.c.shoal(
        "svc",
        "create",
        "--name",
        "kept",
        "--replicas",
        str(replicas),
        "--stop-grace-period",
        "60s",
        "host",
        "sleep",
        "100000",
        timeout=120,
    )
    before = node.c.wait_for(
        lambda: len(p := node.containers()) == replicas and sorted(p), timeout=120, what="5 containers"
    )
    node.sigterm_twice("manager.log")
    assert sorted(node.containers()) == before, "the kill -9 path: containers live on"
    node.start(name="manager2")
    node.c.wait_for(
        lambda: [
            t
            for t in node.c.json("svc", "ps", "kept")
            if t["DesiredState"] == "Running" and t["CurrentState"].startswith("Running")
        ],
        timeout=60,
        what="tasks running again",
    )
    tasks = node.c.json("svc", "ps", "kept")
    assert len(tasks) == replicas, f"re-adopted, not replaced: {[t['ID'] for t in tasks]}"
    assert sorted(node.containers()) == before, "same container processes: nothing restarted"
    for pid in before:  # spare the test the 60 s grace: the containers exit, the node still cleans up
        os.kill(pid, signal.SIGKILL)
    assert node.sigterm() == 0
    node.assert_nothing_left()
    assert not re.search(r"Traceback", (node.c.tmp / "manager2.log").read_text())


def test_sigterm_to_a_worker_stops_its_containers_and_the_manager_sees_it_down(tmp_path: Path):
    """The same promise for ``shoal worker``: its containers, cgroups, mounts and launcher go with it."""
    _needs_root()
    mgr = OneNode(tmp_path / "mgr")
    (tmp_path / "mgr").mkdir()
    worker_data = tmp_path / "w"
    parent = f"{mgr.parent}-w"
    proc = None
    try:
        mgr.c.start("manager", "--data-dir", str(mgr.data), "--listen-addr", mgr.c.addr, "--socket", mgr.c.socket,
                    "--hostname", "e2e-mgr", "--availability", "drain", name="manager")  # fmt: skip
        out = mgr.c.tmp / "manager.out"
        token = mgr.c.wait_for(
            lambda: (m := re.search(r"--token (SHOAL-1-[a-z0-9-]+)", out.read_text())) and m.group(1), what="manager start"
        )
        proc = mgr.c.start("worker", "--join", mgr.c.addr, "--token", token, "--data-dir", str(worker_data),
                           "--hostname", "e2e-w", "--cgroup-parent", parent, name="worker")  # fmt: skip
        mgr.c.wait_for(lambda: mgr.c.shoal("node", "ls", check=False).stdout.count(" Ready ") == 2, timeout=60, what="2 nodes")
        mgr.c.shoal("svc", "create", "--detach", "--name", "w", "--replicas", "20", "--stop-grace-period", "1s",
                    "host", "sleep", "100000", timeout=120)  # fmt: skip
        mgr.c.wait_for(lambda: len(_pids_in_cgroup(parent)) >= 20, timeout=180, what="20 containers on the worker")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(120) == 0
        assert _pids_in_cgroup(parent) == [], "container processes survived the worker"
        assert _launchers(worker_data / "runtime") == [], "the launcher survived the worker"
        assert _cgroup_dirs(parent) == [], "cgroups survived the worker"
        assert _mounts_under(worker_data) == [], "mounts survived the worker"
        mgr.c.wait_for(lambda: re.search(r"e2e-w\s+Down", mgr.c.shoal("node", "ls").stdout), timeout=60, what="worker Down")
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _pids_in_cgroup(parent):
            with_suppress_kill(pid)
        for pid in _launchers(worker_data / "runtime"):
            with_suppress_kill(pid, signal.SIGTERM)
        mgr.c.stop()
