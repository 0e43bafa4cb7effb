"""The Prometheus endpoint while a real manager works (issue 12: only ``shoal_build_info`` was checked).

A manager on the session's etcd with an agent (the ``cluster`` fixture, one process, so one metrics
registry) and ``/metrics`` served as ``--metrics-addr`` serves it: the leader gauge, the dispatcher's
session gauge, placements counted by the scheduler and status reports counted by the dispatcher.
"""

from __future__ import annotations

import re
import urllib.request

import pytest

from shoal import metrics
from shoal.proto import control_pb2 as cpb
from tests.fixtures.cluster import Cluster, running_n, spec
from tests.timing import eventually

pytestmark = pytest.mark.etcd


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.fullmatch(r"(shoal_[a-z_]+)(?:\{[^}]*\})? ([0-9.e+-]+)", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


@pytest.fixture(scope="module")
def port() -> int:
    return metrics.serve("127.0.0.1:0")


async def test_the_endpoint_shows_the_cluster_at_work(cluster: Cluster, port: int):
    async def leading() -> dict[str, float] | None:
        got = scrape(port)
        return got if got.get("shoal_manager_leader") == 1.0 else None

    before = await eventually(leading, 10, "this process's manager leading")
    assert before["shoal_build_info"] == 1.0
    await cluster.add_agent("w1")
    await cluster.add_agent("w2")

    async def sessions() -> bool:
        return scrape(port).get("shoal_dispatcher_sessions", 0) >= 2

    await eventually(sessions, 10, "two sessions counted")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=spec("web", replicas=3)))
    await cluster.until(lambda: running_n(cluster, "web", 3), timeout=15)
    after = scrape(port)
    assert after["shoal_scheduler_placements_total"] - before.get("shoal_scheduler_placements_total", 0) >= 3
    assert after["shoal_dispatcher_status_updates_total"] > before.get("shoal_dispatcher_status_updates_total", 0)

    await cluster.kill_agent("w2")

    async def one_session() -> bool:
        return scrape(port).get("shoal_dispatcher_sessions", 0) == 1

    await eventually(one_session, 10, "the closed session no longer counted")
