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

from tests.e2e.clicluster import CliCluster, containers, free_port


def _needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip(reason="needs root: containers use namespaces and cgroups")

    if shutil.which("etcd") is None:
        pytest.skip(reason="etcd binary not found; run make setup")


def _start_cluster(c: CliCluster, extra: list[str]) -> None:
    """A manager (with ``extra`` flags) and a worker, both Ready."""
    c.start("manager", "--data-dir", str(c.tmp / "m"), "--listen-addr", c.addr, "--socket", c.socket, "--hostname", "e2e-manager", *extra, name="manager")
    out = c.tmp / "manager.out"
    c.token = c.wait_for(lambda: (m := re.search(r"--token (SHOAL-1-[a-z0-9-]+)", out.read_text())) and m.group(1), what="manager start")
    c.start("worker", "--join", c.addr, "--token", c.token, "--data-dir", str(c.tmp / "w"), "--hostname", "e2e-worker", name="worker")
    # its log first (a file), then the CLI: each `node ls` is a process start, seconds in the cgroup-v2 VM
    c.wait_for(lambda: "joined the cluster" in (c.tmp / "worker.log").read_text(), what="the worker's join")
    c.wait_for(lambda: c.shoal("node", "ls", check=False).stdout.count(" Ready ") == 2, what="2 ready nodes")


def _new_cluster(tmp: Path) -> CliCluster:
    return CliCluster(tmp, str(tmp / "manager.sock"), f"127.0.0.1:{free_port()}")


@pytest.fixture
def cli_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[CliCluster]:
    """A manager and a worker of this test's own; ``@pytest.mark.manager_args(...)`` adds flags to ``shoal manager``."""
    _needs_root()
    marker = request.node.get_closest_marker("manager_args")
    c = _new_cluster(tmp_path)
    try:
        _start_cluster(c, [str(a) for a in marker.args] if marker else [])
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def module_cli_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliCluster]:
    """One manager + worker for a module's tests (a cluster start is most of such a test's time, and under
    the cgroup-v2 VM's emulation about a minute). Tests take it through ``shared_cli_cluster``."""
    _needs_root()
    c = _new_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        _start_cluster(c, [])
        yield c
    finally:
        c.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Each phase's report on the item (``item.rep_call``): ``shared_cli_cluster`` cleans up more after a failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def shared_cli_cluster(module_cli_cluster: CliCluster, request: pytest.FixtureRequest) -> Iterator[CliCluster]:
    """The module's cluster, handed back as the test found it, so that a failed test does not leak into the
    next one: no service (a passing test removes its own; after a failure every one left is removed), no
    container (waited out) and no image in the nodes' own stores. A test that changes the nodes (adds,
    pauses, removes, restarts one) or the manager's flags takes ``cli_cluster`` instead."""
    c = module_cli_cluster
    assert all(p.poll() is None for p in c.procs), "the shared cluster's manager and worker still run"
    yield c
    call = getattr(request.node, "rep_call", None)
    if call is None or call.failed:  # a CLI call costs seconds in the cgroup-v2 VM: only when needed
        left = [s["Name"] for s in c.json("svc", "ls")]
        if left:
            c.shoal("svc", "rm", *left)
    c.wait_for(lambda: not containers(c), timeout=60, what="the containers of the test's services removed")
    for node in ("m", "w"):
        remove_node_images(c.tmp / node / "runtime" / "images")


def remove_node_images(root: Path) -> None:
    """Remove every image of a node's own store, as ``shoal image rm`` does once no container uses them
    (the store's lock held; the node's runtime reads the store from disk on every use)."""
    from shoal.runtime.image.store import ImageStore

    store = ImageStore(str(root))
    if not os.path.isdir(store.images_dir):
        return
    with store.locked():
        for image in store.images():
            store.remove(image)
