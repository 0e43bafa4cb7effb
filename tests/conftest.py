"""Generic fixtures shared by every test directory: a real etcd (one per session) and a store on it,
a control plane on it (``cluster``, tests/fixtures/cluster.py) and the real runtime (``rt``,
tests/fixtures/runtime.py).

Also plugs in the skip gate (tests/skipgate.py): under CI=true a skip must be on the allow-list.
etcd, the store and hypothesis are imported only when used: the cgroup-v2 VM (tests/v2vm) runs part of
the suite under software emulation, where importing them costs tens of seconds.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests import skipgate
from tests.fixtures.runtime import rt  # noqa: F401  (a fixture registered for every directory)

if TYPE_CHECKING:
    from shoal.etcdtls import EtcdTLS
    from shoal.manager.store.embedded import EmbeddedEtcd
    from shoal.manager.store.etcd import EtcdStore
    from tests.fixtures.cluster import Cluster


def pytest_configure(config: pytest.Config) -> None:
    skipgate.register(config)
    if config.pluginmanager.has_plugin("hypothesispytest"):  # off in the cgroup-v2 VM (no property tests there)
        from hypothesis import HealthCheck, settings

        # Timing never decides a test: hypothesis' per-example deadline (200 ms) and its too-slow health
        # check fail property tests on a loaded 2-core machine, which says nothing about the property.
        settings.register_profile("shoal", deadline=None, suppress_health_check=[HealthCheck.too_slow])
        settings.load_profile("shoal")


class EtcdServer:
    """A throwaway etcd on free loopback ports; ``restart`` keeps its ports and data."""

    def __init__(self, data_dir: Path) -> None:
        from shoal.manager.store.embedded import EmbeddedEtcd

        self.etcd: EmbeddedEtcd = EmbeddedEtcd(data_dir)

    @property
    def endpoint(self) -> str:
        return self.etcd.endpoint

    @property
    def tls(self) -> EtcdTLS:
        """The etcd CA and a client certificate it accepts (it serves TLS and demands client certificates)."""
        return self.etcd.client_tls

    @property
    def running(self) -> bool:
        return self.etcd.running

    async def start(self) -> None:
        await self.etcd.start()

    async def stop(self) -> None:
        await self.etcd.stop()

    async def restart(self) -> None:
        await self.etcd.stop()
        await self.etcd.start()


def _run_sync(fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine to completion from sync code, even when an event loop is running in this thread."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(fn())).result()


@pytest.fixture(scope="session")
def etcd_server() -> Iterator[EtcdServer]:
    if shutil.which("etcd") is None:
        pytest.skip(reason="etcd binary not found; run make setup")
    data_dir = Path(tempfile.mkdtemp(prefix="shoal-test-etcd-"))
    server = EtcdServer(data_dir)
    try:
        _run_sync(server.start)
        yield server
    finally:
        _run_sync(server.stop)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
async def etcd_store(etcd_server: EtcdServer) -> AsyncIterator[EtcdStore]:
    """A connected EtcdStore on an empty keyspace (every key is deleted before the test)."""
    from shoal.manager.store.base import Delete
    from shoal.manager.store.etcd import connect

    if not etcd_server.running:  # a failed restart test may have left it stopped
        await etcd_server.start()
    store = await connect([etcd_server.endpoint], timeout=5.0, tls=etcd_server.tls)
    await store.txn([], [Delete("", prefix=True)])
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def cluster(tmp_path: Path, etcd_store: EtcdStore, etcd_server: EtcdServer) -> AsyncIterator[Cluster]:
    """A started manager on the session's etcd (emptied first); agents are added by the test
    (tests/fixtures/cluster.py, imported here: the manager's imports are heavy)."""
    from tests.fixtures.cluster import Cluster

    c = Cluster(tmp_path, etcd_server.endpoint, etcd_server.tls)
    await c.start()
    try:
        yield c
    finally:
        await c.stop()
