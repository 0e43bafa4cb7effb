"""Lab faults on real processes in a host's real cgroup: a power cut, a daemon crash, a clean stop, an
embedded etcd crash, and what ``lab ls`` shows meanwhile.

Stand-ins for the host's processes, started in the host's cgroup as the lab starts them: a "daemon"
(sleep) with an embedded "etcd" child (sleep under a link named etcd, as a manager's etcd child is
found by its name), and a "container" outside the daemon's process tree (as a runtime launcher's
containers are). Nothing leaves this test's own lab cgroup.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.lab import cgroups, faults, procs, state
from shoal.lab.state import Lab, Node, Proc
from tests.timing import wait_until

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: makes cgroups"),
    pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup"), reason="no cgroup filesystem mounted"),
]


class Host:
    """One lab host with its stand-in processes."""

    def __init__(self, lab: Lab, node: Node, tmp: Path) -> None:
        self.lab, self.node, self.tmp = lab, node, tmp
        self.popen: list[subprocess.Popen] = []

    def start(self, script: str) -> Proc:
        p = subprocess.Popen(["/bin/sh", "-c", script], preexec_fn=lambda: cgroups.join_self(self.node.cgroups),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.tmp)
        self.popen.append(p)
        start = wait_until(lambda: procs._start_time(p.pid), 5, "the process start time")
        return Proc(p.pid, start)

    def boot(self) -> None:
        """A daemon with an embedded etcd child, and a container beside it."""
        (self.tmp / "etcd").symlink_to("/bin/sleep")
        self.node.daemon = self.start("./etcd 1000 & exec sleep 1000")
        wait_until(lambda: procs.embedded_etcd(self.node), 5, "the embedded etcd child")
        self.container = self.start("exec sleep 1000")

    def reap(self) -> None:
        for p in self.popen:
            if p.poll() is None:
                p.kill()
            p.wait()


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    lab = state.plan(f"f{uuid.uuid4().hex[:6]}", 1, 1, ipaddress.ip_network("172.30.9.0/24"), tmp_path, False)
    lab.cgroups = cgroups.lab_dirs(lab.name)
    node = lab.managers[0]
    node.cgroups = cgroups.node_dirs(lab.cgroups, node.name)
    cgroups.create(node.cgroups)
    h = Host(lab, node, tmp_path)
    try:
        yield h
    finally:
        cgroups.kill_all(lab.cgroups)
        h.reap()
        cgroups.remove(lab.cgroups)
        cgroups.remove_parent_if_empty(lab.cgroups)


def test_status_while_the_host_runs(host: Host):
    host.boot()
    row = faults.status(host.lab, host.node)
    assert (row["Daemon"], row["Etcd"], row["Network"]) == ("running", "embedded", "connected")
    assert int(row["Processes"]) >= 3, "daemon, its etcd and the container"


def test_a_daemon_crash_takes_its_etcd_but_the_containers_keep_running(host: Host):
    host.boot()
    etcd = procs.embedded_etcd(host.node)
    msg = faults.kill_daemon(host.lab, host.node)
    assert msg == "the shoal manager process of manager1 killed; its containers keep running"
    assert not procs.alive(host.node.daemon) and not procs.alive(etcd)
    assert procs.alive(host.container), "the container outlives its daemon (live restore)"
    assert faults.status(host.lab, host.node)["Daemon"] == "stopped"


def test_a_power_cut_kills_everything_on_the_host(host: Host):
    host.boot()
    assert faults.kill(host.lab, host.node) == "manager1 killed (all of its processes and containers got SIGKILL)"
    assert cgroups.pids(host.node.cgroups) == set()
    assert not procs.alive(host.container) and not procs.alive(host.node.daemon)
    assert faults.kill(host.lab, host.node) == "manager1 is not running"


def test_a_clean_stop_signals_the_daemon_then_clears_the_host(host: Host):
    marker = host.tmp / "got-term"
    host.node.daemon = host.start(f"trap 'echo term > {marker}; exit 0' TERM; sleep 1000 & wait")
    host.container = host.start("exec sleep 1000")
    wait_until(lambda: len(cgroups.pids(host.node.cgroups)) >= 3, 5, "the host's processes")
    assert faults.stop(host.lab, host.node) == "manager1 stopped"
    assert marker.read_text() == "term\n", "the daemon got SIGTERM first"
    assert cgroups.pids(host.node.cgroups) == set(), "what was left on the host was killed"


def test_an_embedded_etcd_crash_leaves_its_manager_running(host: Host):
    host.boot()
    etcd = procs.embedded_etcd(host.node)
    assert faults.kill_etcd(host.lab, host.node) == "the embedded etcd of manager1 killed"
    assert not procs.alive(etcd) and procs.alive(host.node.daemon)
    assert faults.status(host.lab, host.node)["Etcd"] == "stopped"
    assert faults.kill_etcd(host.lab, host.node) == "the embedded etcd of manager1 is not running"


def test_an_etcd_member_of_a_three_manager_lab_is_killed_by_its_own_record(host: Host):
    host.lab.etcd_cluster = True
    host.node.etcd = host.start("exec sleep 1000")
    assert faults.status(host.lab, host.node)["Etcd"] == "running"
    assert faults.kill_etcd(host.lab, host.node) == "the etcd member on manager1 killed"
    assert not procs.alive(host.node.etcd)
    assert faults.status(host.lab, host.node)["Etcd"] == "stopped"
