"""Fixtures for e2e tests: a real two-node cluster (manager + worker processes) on this machine.

Each has its own data dirs, socket and ports; teardown stops the processes by PID.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.clicluster import CliCluster, free_port


def _needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip(reason="needs root: containers use namespaces and cgroups")

    if shutil.which("etcd") is None:
        pytest.skip(reason="etcd binary not found; run make setup")


@pytest.fixture
def cli_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[CliCluster]:
    """A manager and a worker; ``@pytest.mark.manager_args(...)`` adds flags to ``shoal manager``."""
    _needs_root()
    marker = request.node.get_closest_marker("manager_args")
    extra = [str(a) for a in marker.args] if marker else []
    port = free_port()
    c = CliCluster(tmp_path, str(tmp_path / "manager.sock"), f"127.0.0.1:{port}")
    try:
        c.start("manager", "--data-dir", str(tmp_path / "m"), "--listen-addr", c.addr, "--socket", c.socket, "--hostname", "e2e-manager", *extra, name="manager")
        out = tmp_path / "manager.out"
        c.token = c.wait_for(lambda: (m := re.search(r"--token (SHOAL-1-[a-z0-9-]+)", out.read_text())) and m.group(1), what="manager start")
        c.start("worker", "--join", c.addr, "--token", c.token, "--data-dir", str(tmp_path / "w"), "--hostname", "e2e-worker", name="worker")
        c.wait_for(lambda: c.shoal("node", "ls", check=False).stdout.count(" Ready ") == 2, what="2 ready nodes")
        yield c
    finally:
        c.stop()

