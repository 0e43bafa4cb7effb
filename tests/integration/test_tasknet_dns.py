"""A wired task's DNS settings as root: its resolv.conf (the node's responder, the spec's search domains
and options) and its --dns servers as the responder's upstreams for its own addresses only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shoal.proto import types_pb2 as pb
from shoal.worker.netagent import NetAgent
from shoal.worker.network.topology import NodeSpec
from shoal.worker.tasknet import TaskWiring

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: a task's network namespace is a bind mount"),
]


class Plumbing:
    """No interfaces: only the namespace and the files are under test here."""

    async def attach(self, *args: object, **kwargs: object) -> None:
        pass

    async def detach(self, *args: object) -> None:
        pass


def _task(tid: str, host: int = 5, **dns: list[str]) -> pb.Task:
    t = pb.Task(id=tid, bridge_address=f"10.210.1.{host}/24")
    t.networks.add(network="web", address=f"10.0.9.{host}/24")
    t.spec.container.dns_config.CopyFrom(pb.DNSConfig(**dns))
    return t


async def test_resolv_conf_takes_the_search_domains_and_options(tmp_path: Path) -> None:
    wiring = TaskWiring(tmp_path / "net", Plumbing())  # type: ignore[arg-type]  # attach/detach are all it calls
    spec = NodeSpec(gateway="10.210.1.1/24", underlay="192.168.0.2")
    w = await wiring.wire(_task("t1", search=["corp.example", "example"], options=["ndots:2", "timeout:1"]), spec)
    try:
        assert (tmp_path / "net" / "t1" / "resolv.conf").read_text() == (
            "nameserver 10.210.1.1\nsearch corp.example example\noptions ndots:2 timeout:1\n")
        assert w.mounts[0]["target"] == "/etc/resolv.conf" and w.mounts[0]["readonly"]
        w2 = await wiring.wire(_task("t2"), spec)
        assert (tmp_path / "net" / "t2" / "resolv.conf").read_text() == "nameserver 10.210.1.1\noptions ndots:0\n"
        assert w2.netns_path.endswith("t2/netns")
    finally:
        await wiring.unwire("t1")
        await wiring.unwire("t2")
    assert not (tmp_path / "net" / "t1").exists()


async def test_dns_servers_are_upstreams_for_the_tasks_addresses_until_it_is_unwired(tmp_path: Path) -> None:
    agent = NetAgent(tmp_path / "net")
    agent._set_upstreams(_task("t1", nameservers=["10.0.0.53", "10.0.0.54"]))
    agent._set_upstreams(_task("t2", host=6))
    servers = [("10.0.0.53", 53), ("10.0.0.54", 53)]
    assert agent.client_upstreams == {"10.210.1.5": servers, "10.0.9.5": servers}
    await agent.unwire("t1")
    assert agent.client_upstreams == {}
