"""Pure rules behind promote/demote: which etcd endpoints a promoted node can use; when a session must end."""

from __future__ import annotations

from shoal.manager.auth import role_changed
from shoal.manager.cluster import unreachable_etcd_error, usable_etcd_endpoints
from shoal.proto import types_pb2 as pb

LAB = pb.ManagerStatus(addr="10.77.0.2:4242", etcd_endpoints=["http://10.77.0.2:2379", "http://10.77.0.3:2379"])
LOCAL = pb.ManagerStatus(addr="127.0.0.1:4242", etcd_endpoints=["http://127.0.0.1:2379"])
EMBEDDED = pb.ManagerStatus(addr="127.0.0.1:4242")  # an embedded etcd is never recorded


def test_a_node_on_another_host_gets_only_non_loopback_endpoints() -> None:
    assert usable_etcd_endpoints([LAB, LOCAL], "10.77.0.9:51000") == ["http://10.77.0.2:2379", "http://10.77.0.3:2379"]
    assert usable_etcd_endpoints([LOCAL], "10.77.0.9:51000") == []
    assert usable_etcd_endpoints([LOCAL], "ipv4:192.168.1.5:4000") == []


def test_a_node_on_the_managers_host_may_use_loopback_endpoints() -> None:
    assert usable_etcd_endpoints([LOCAL, LOCAL], "127.0.0.1:51000") == ["http://127.0.0.1:2379"]
    assert usable_etcd_endpoints([LOCAL], "ipv4:127.0.0.1:51000") == ["http://127.0.0.1:2379"]
    assert usable_etcd_endpoints([LOCAL], "ipv6:[::1]:51000") == ["http://127.0.0.1:2379"]


def test_an_embedded_etcd_gives_nothing_and_the_refusal_says_what_to_do() -> None:
    assert usable_etcd_endpoints([EMBEDDED], "127.0.0.1:51000") == []
    msg = unreachable_etcd_error("w1")
    assert msg.startswith("cannot promote node w1") and "--etcd" in msg and "\n" not in msg


def test_a_session_ends_when_the_record_and_the_certificate_disagree() -> None:
    assert role_changed(pb.NodeSpec.MANAGER, "worker")
    assert role_changed(pb.NodeSpec.WORKER, "manager")
    assert not role_changed(pb.NodeSpec.WORKER, "worker")
    assert not role_changed(pb.NodeSpec.MANAGER, "manager")
    assert not role_changed(pb.NodeSpec.MANAGER, "admin")  # not a node certificate: nothing to renew
