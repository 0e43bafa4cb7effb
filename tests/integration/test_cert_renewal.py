"""A node's certificate is renewed while the node keeps running: no restart, no task restarted (issue 12:
README's "certificate renewal without restart", run with a short validity).

A real manager on the session's etcd with mutual TLS (the ``cluster`` fixture); its CA is made to
issue certificates that are already past the point of renewal (they are backdated five minutes, as
every shoal certificate is, and live a little longer than that), so the agent renews about once a
second: the serial changes, the agent reconnects with the new certificate, the node stays Ready and
its task keeps running.
"""

from __future__ import annotations

import datetime as dt

import pytest

from shoal.manager.ca import CertificateAuthority
from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb
from tests.fixtures.cluster import Cluster, running_n, spec
from tests.timing import eventually

pytestmark = pytest.mark.etcd

SHORT = dt.timedelta(minutes=5, seconds=20)  # certificates start 5 minutes back: this one is due at once


@pytest.fixture
def short_lived(monkeypatch: pytest.MonkeyPatch) -> None:
    issue = CertificateAuthority.issue

    def short(self, public_key, node_id, role, cluster_id, validity=SHORT):  # type: ignore[no-untyped-def]
        return issue(self, public_key, node_id, role, cluster_id, SHORT)

    monkeypatch.setattr(CertificateAuthority, "issue", short)


async def test_a_due_certificate_is_renewed_and_the_node_keeps_its_session_and_task(cluster: Cluster, short_lived):
    agent = await cluster.add_agent("w1")
    first = agent.node.creds.info()
    assert first.not_after - first.not_before == SHORT, "the short-lived certificate is in use"
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=spec("web", replicas=1)))
    (task,) = await cluster.until(lambda: running_n(cluster, "web", 1), timeout=15)
    serials = {first.serial}

    async def renewed_twice() -> bool:
        serials.add(agent.node.creds.info().serial)
        return len(serials) >= 3

    await eventually(renewed_twice, 20, "two renewals of the node certificate", interval=0.2)
    info = agent.node.creds.info()
    assert (info.node_id, info.role) == (first.node_id, first.role), "the same node, the same role"

    async def settled() -> bool:
        nodes = (await cluster.control.ListNodes(cpb.ListNodesRequest())).nodes
        w1 = next(n for n in nodes if n.description.hostname == "w1")
        running = await running_n(cluster, "web", 1)
        return w1.status.state == pb.NodeStatus.READY and bool(running) and running[0].id == task.id

    await eventually(settled, 15, "the node Ready with its task still running")
    assert agent.executor.started == [task.id], "the task was never restarted"  # type: ignore[attr-defined]
    assert agent.ready.is_set()
