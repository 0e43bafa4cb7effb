"""Fixtures shared by the integration tests: a real runtime with its own state dir and cgroup parent."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shoal.runtime import Runtime
from tests.fixtures.cluster import Cluster


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = Runtime(tmp_path / "state", cgroup_parent=f"shoal-test-{uuid.uuid4().hex[:8]}")
    await runtime.open()
    try:
        yield runtime
    finally:
        for info in await runtime.list():
            await runtime.delete(info.id, force=True)
        await runtime.close()


@pytest.fixture
async def cluster(tmp_path: Path, etcd_store, etcd_server) -> AsyncIterator[Cluster]:  # type: ignore[no-untyped-def]
    """A started manager on the session's etcd (emptied first); agents are added by the test."""
    c = Cluster(tmp_path, etcd_server.endpoint, etcd_server.tls)
    await c.start()
    try:
        yield c
    finally:
        await c.stop()
