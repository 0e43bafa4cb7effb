"""The agent's side of ``shoal run --network``: attach through a manager, wire, reap what ended, and the
local API a root caller on the node talks to (a real abstract unix socket)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from shoal import agentapi
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.worker import localapi
from shoal.worker.attachments import UNSTARTED_TTL_S, AttachmentError, Attachments, namespace_in_use
from shoal.worker.network.plan import NODE
from shoal.worker.network.topology import NodeSpec, OverlaySpec
from shoal.worker.tasknet import Wiring

SPEC = NodeSpec(gateway="10.66.1.1/24", underlay="192.168.9.1",
                overlays=(OverlaySpec("apps", 4097, "10.66.2.0/24", "10.66.2.2/24", "10.66.2.192/26"),))


class FakeWiring:
    """TaskWiring's surface over a directory, without namespaces (the plumbing has its own tests)."""

    def __init__(self, d: Path) -> None:
        self.dir = d
        self.wired_tasks: dict[str, pb.Task] = {}

    def netns_path(self, task_id: str) -> str:
        return str(self.dir / task_id / "netns")

    def wired(self) -> list[str]:
        return sorted(p.name for p in self.dir.iterdir()) if self.dir.exists() else []

    async def wire(self, task: pb.Task, spec: NodeSpec) -> Wiring:
        (self.dir / task.id).mkdir(parents=True)
        Path(self.netns_path(task.id)).write_text("")
        self.wired_tasks[task.id] = task
        return Wiring(self.netns_path(task.id), [{"type": "bind", "source": str(self.dir / task.id / "resolv.conf"),
                                                 "target": "/etc/resolv.conf", "readonly": True}])

    async def unwire(self, task_id: str) -> None:
        for f in (self.dir / task_id).glob("*"):
            f.unlink()
        if (self.dir / task_id).exists():
            (self.dir / task_id).rmdir()


class FakeManager:
    def __init__(self) -> None:
        self.detached: list[str] = []
        self.refuse: grpc.StatusCode | None = None
        self.down = False

    async def attach(self, req: dpb.AttachNetworkRequest) -> dpb.AttachNetworkResponse:
        if self.refuse is not None:
            raise grpc.aio.AioRpcError(self.refuse, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                       details=f"network {req.network} not manually attachable")
        att = pb.ContainerAttachment(id=f"att-{req.container_id}", node_id=req.node_id, network_id="net-apps",
                                     container_id=req.container_id, address="10.66.2.7/24")
        addrs = pb.TaskAddresses(task_id=att.id, node_id=req.node_id, bridge_address="10.66.1.9/24")
        addrs.networks.add(network_id="net-apps", network="apps", address="10.66.2.7/24")
        return dpb.AttachNetworkResponse(attachment=att, addresses=addrs,
                                         network=pb.Network(id="net-apps", spec=pb.NetworkSpec(name="apps")))

    async def detach(self, req: dpb.DetachNetworkRequest) -> dpb.DetachNetworkResponse:
        if self.down:
            raise ConnectionError("no manager answers")
        self.detached.append(req.attachment_id)
        return dpb.DetachNetworkResponse()


@pytest.fixture
def node(tmp_path: Path) -> tuple[Attachments, FakeWiring, FakeManager]:
    wiring, mgr = FakeWiring(tmp_path / "attached"), FakeManager()

    async def wait_for(names: set[str], timeout: float) -> NodeSpec:
        assert names == {"apps"}
        return SPEC

    att = Attachments(tmp_path / "attached", wiring, wait_for)  # type: ignore[arg-type]  # the fake has its surface
    att.node_id, att.attach_rpc, att.detach_rpc = "n1", mgr.attach, mgr.detach
    att.proc = str(tmp_path / "proc")
    (tmp_path / "proc").mkdir()
    return att, wiring, mgr


def in_namespace(tmp_path: Path, att: Attachments, att_id: str) -> None:
    """A process of the fake /proc is in the attachment's namespace (same file: same inode and device)."""
    (tmp_path / "proc" / "4242" / "ns").mkdir(parents=True)
    os.link(att.wiring.netns_path(att_id), tmp_path / "proc" / "4242" / "ns" / "net")


async def test_attach_wires_the_managers_addresses_and_the_container_is_a_dns_client(node):
    att, wiring, _ = node
    got = await att.attach("apps", "c1", "probe")
    assert got["attachment"] == "att-c1" and got["address"] == "10.66.2.7/24" and got["network"] == "apps"
    assert got["netns"].endswith("att-c1/netns") and got["resolv_conf"].endswith("resolv.conf")
    task = wiring.wired_tasks["att-c1"]
    assert task.bridge_address == "10.66.1.9/24" and [(a.network, a.address) for a in task.networks] == [("apps", "10.66.2.7/24")]
    (client,) = att.task_nets()
    assert client.addresses == {NODE: "10.66.1.9", "apps": "10.66.2.7"} and not client.serving


async def test_a_refusal_is_docker_s_words_and_nothing_is_wired(node):
    att, wiring, mgr = node
    mgr.refuse = grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(AttachmentError, match="Could not attach to network sealed: network sealed not manually attachable"):
        await att.attach("sealed", "c1", "probe")
    assert wiring.wired() == []


async def test_reap_releases_a_started_container_once_its_namespace_is_empty(node, tmp_path):
    att, _, mgr = node
    await att.attach("apps", "c1", "probe")
    att.started("att-c1")
    in_namespace(tmp_path, att, "att-c1")
    assert await att.reap() == [] and att.ids() == ["att-c1"]
    (tmp_path / "proc" / "4242" / "ns" / "net").unlink()  # its last process ended
    assert await att.reap() == ["att-c1"]
    assert att.ids() == [] and mgr.detached == ["att-c1"] and att.task_nets() == []


async def test_a_container_that_never_started_is_released_after_a_while(node):
    att, _, mgr = node
    await att.attach("apps", "c1", "probe")
    record = json.loads((att.dir / "att-c1" / "container.json").read_text())
    assert await att.reap(now=record["created"] + 5) == []
    assert await att.reap(now=record["created"] + UNSTARTED_TTL_S + 1) == ["att-c1"] and mgr.detached == ["att-c1"]


async def test_a_release_the_manager_did_not_hear_is_told_again_later(node):
    att, _, mgr = node
    await att.attach("apps", "c1", "probe")
    mgr.down = True
    await att.release("att-c1")
    assert att.pending == {"att-c1"} and att.ids() == []
    mgr.down = False
    await att.reap()
    assert att.pending == set() and mgr.detached == ["att-c1"]


def test_namespace_in_use_sees_this_process_in_its_own_namespace(tmp_path):
    assert namespace_in_use(f"/proc/{os.getpid()}/ns/net")
    assert not namespace_in_use(str(tmp_path / "gone"))


async def test_the_local_api_answers_root_over_an_abstract_socket(node):
    att, _, mgr = node
    address = f"\0shoal-agent-test-{os.getpid()}"
    server = await localapi.serve(localapi.handler_for(att), address)
    assert server is not None
    try:
        got = await agentapi.call({"op": "attach", "network": "apps", "container_id": "c2", "container_name": "x"},
                                  address)
        assert got["attachment"] == "att-c2"
        assert await agentapi.call({"op": "started", "attachment": "att-c2"}, address) == {}
        assert await agentapi.call({"op": "detach", "attachment": "att-c2"}, address) == {}
        assert mgr.detached == ["att-c2"] and att.ids() == []
        with pytest.raises(agentapi.AgentApiError, match="unknown request 'nope'"):
            await agentapi.call({"op": "nope"}, address)
        with pytest.raises(agentapi.AgentApiError, match="no attachment att-zz on this node"):
            await agentapi.call({"op": "started", "attachment": "att-zz"}, address)
        assert await localapi.serve(localapi.handler_for(att), address) is None  # taken: the agent goes on without
        script = ("import asyncio, os; from shoal import agentapi\nos.setuid(65534)\n"
                  f"print(asyncio.run(agentapi.call({{'op': 'detach', 'attachment': 'x'}}, {address!r})))")
        res = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", script], capture_output=True, text=True)
        assert "the node agent serves root only" in res.stderr, res.stderr
    finally:
        server.close()


async def test_no_agent_on_the_host_is_one_clear_error():
    with pytest.raises(agentapi.AgentApiError, match="no shoal node agent on this host"):
        await agentapi.call({"op": "detach", "attachment": "x"}, f"\0shoal-agent-absent-{os.getpid()}")
