"""Exploit (issue 11, Medium): the join tokens were printed at every manager start, so journald kept a copy
of them per restart, and the lab passed them on daemons' command lines, which any local user reads in
/proc/PID/cmdline.

Now only the start that creates the cluster prints them (later starts point at ``shoal join-token``),
and the lab hands them to its daemons through the environment (/proc/PID/environ is private to the
process's owner).
"""

from __future__ import annotations

from pathlib import Path

from shoal.cli import daemons
from shoal.lab import lifecycle, state
from shoal.manager import cluster
from shoal.manager.store.memory import MemoryStore
from shoal.node.options import ManagerReady


async def test_only_the_start_that_creates_the_cluster_is_told_to_print_the_tokens():
    store = MemoryStore()
    first, created = await cluster.ensure(store, "digest", b"k" * 32)
    again, created_again = await cluster.ensure(store, "digest", b"k" * 32)
    assert created and not created_again
    assert (again.worker_token, again.manager_token) == (first.worker_token, first.manager_token)
    banner = daemons.ready_message(ManagerReady(
        "n" * 16, "/s", "10.0.0.1:4242", again.worker_token, again.manager_token, Path("/c"), created_again
    ))  # fmt: skip
    assert again.worker_token not in banner and again.manager_token not in banner


def test_no_lab_daemon_gets_a_token_on_its_command_line(tmp_path: Path):
    import ipaddress

    lab = state.plan("t", 3, 2, ipaddress.ip_network("172.30.9.0/24"), tmp_path, False)
    lab.worker_token, lab.manager_token = "SHOAL-1-ca-worker", "SHOAL-1-ca-manager"
    for node in lab.nodes:
        for first in (True, False):
            argv = lifecycle.manager_argv(lab, node, first) if node.role == "manager" else lifecycle.worker_argv(lab, node)
            assert not any("SHOAL-1" in a for a in argv), (node.name, argv)
            env = lifecycle.daemon_env(lab, node, first)
            assert set(env) <= {"SHOAL_TOKEN"}
    assert lifecycle.daemon_env(lab, lab.workers[0], False)["SHOAL_TOKEN"] == "SHOAL-1-ca-worker"
