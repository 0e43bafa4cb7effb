"""Standalone containers on cluster networks: the agent's side of ``shoal run --network NAME``.

``attach`` asks a manager for an attachment (``Dispatcher/AttachNetwork``: the manager records it, its
allocator gives it an address on the network and one on this node's bridge, and puts the node on the
network), waits until the node is wired for that network, then wires a network namespace for the
container exactly as a task's (``TaskWiring``: ``eth0`` on the node bridge, ``eth1`` on the overlay,
the VIP block routed via the node, a resolv.conf naming the node's DNS responder). The container joins
that namespace; the caller says ``started`` once it runs.

The records live under their own directory (``<dir>/<attachment id>/``, with the container's id in
``container.json``), so they survive an agent restart. ``reap`` releases an attachment whose container
is gone, for whatever reason (``--rm``, ``-d`` then exited, killed, the CLI died): no process is left in
its namespace (or, never started, it is older than ``UNSTARTED_TTL_S``). Releasing unwires the namespace
and tells a manager (``DetachNetwork``), which frees the addresses; a manager that cannot be reached is
told later (``pending``).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from shoal import log
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.worker.network.plan import NODE, TaskNet
from shoal.worker.network.topology import NodeSpec
from shoal.worker.tasknet import TaskWiring

_log = log.get(__name__)
UNSTARTED_TTL_S = 120.0
"""An attachment whose container never said it started is released after this long (the CLI died)."""

Attach = Callable[[dpb.AttachNetworkRequest], Awaitable[dpb.AttachNetworkResponse]]
Detach = Callable[[dpb.DetachNetworkRequest], Awaitable[dpb.DetachNetworkResponse]]
WaitFor = Callable[[set[str], float], Awaitable[NodeSpec]]


class AttachmentError(Exception):
    """An attach that cannot be done (the message is for the user)."""


def namespace_in_use(netns_path: str, proc: str = "/proc") -> bool:
    """Whether any process of this machine is in the network namespace kept at ``netns_path``."""
    try:
        st = os.stat(netns_path)
    except OSError:
        return False
    for pid in os.listdir(proc):
        if pid.isdigit():
            with contextlib.suppress(OSError):
                ns = os.stat(f"{proc}/{pid}/ns/net")
                if (ns.st_ino, ns.st_dev) == (st.st_ino, st.st_dev):
                    return True
    return False


class Attachments:
    """This node's attached containers (see the module docstring)."""

    def __init__(self, state_dir: Path, wiring: TaskWiring, wait_for: WaitFor) -> None:
        self.dir = state_dir
        self.wiring = wiring  # a TaskWiring over ``state_dir``
        self.wait_for = wait_for
        self.node_id = ""
        self.attach_rpc: Attach | None = None  # set by the agent: a call to some manager
        self.detach_rpc: Detach | None = None
        self.pending: set[str] = set()  # released here, the manager not told yet
        self._attaching: set[str] = set()  # being wired: not theirs to reap yet
        self.proc = "/proc"  # where the machine's processes are listed (tests give another)
        self.on_change: Callable[[], None] = lambda: None  # the DNS directory follows the attachments

    def _record(self, att_id: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.dir / att_id / "container.json").read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None

    def ids(self) -> list[str]:
        return self.wiring.wired()

    async def attach(self, network: str, container_id: str, container_name: str) -> dict[str, Any]:
        """Attach a container of this node to ``network``; what it needs to join it."""
        if self.attach_rpc is None or not self.node_id:
            raise AttachmentError("this node has not joined a cluster yet")
        if not network or not container_id:
            raise AttachmentError("an attachment needs a network and a container id")
        try:
            answer = await self.attach_rpc(dpb.AttachNetworkRequest(
                node_id=self.node_id, network=network, container_id=container_id, container_name=container_name))
        except grpc.aio.AioRpcError as exc:  # docker's words: "Could not attach to network N: ... not manually attachable"
            raise AttachmentError(f"Could not attach to network {network}: {exc.details()}") from None
        att, addrs = answer.attachment, answer.addresses
        task = pb.Task(id=att.id, node_id=self.node_id, bridge_address=addrs.bridge_address)
        task.networks.extend(addrs.networks)
        self._attaching.add(att.id)
        try:
            spec = await self.wait_for({answer.network.spec.name}, 30.0)
            wired = await self.wiring.wire(task, spec)
            record = {"container_id": container_id, "name": container_name, "network": answer.network.spec.name,
                      "bridge_address": addrs.bridge_address, "address": att.address,
                      "created": time.time(), "started": False}
            (self.dir / att.id / "container.json").write_text(json.dumps(record))
        except BaseException:
            await self.release(att.id)
            raise
        finally:
            self._attaching.discard(att.id)
        self.on_change()
        _log.info("container attached", container=container_id[:12], network=answer.network.spec.name,
                  address=att.address, attachment=att.id)
        return {"attachment": att.id, "netns": wired.netns_path, "resolv_conf": wired.mounts[0]["source"],
                "address": att.address, "network": answer.network.spec.name}

    def started(self, att_id: str) -> None:
        """The container runs: from now on an empty namespace means it ended."""
        record = self._record(att_id)
        if record is None:
            raise AttachmentError(f"no attachment {att_id} on this node")
        record["started"] = True
        (self.dir / att_id / "container.json").write_text(json.dumps(record))

    async def release(self, att_id: str) -> None:
        """Unwire the attachment and tell a manager (later, if none answers now)."""
        await self.wiring.unwire(att_id)
        self.on_change()
        self.pending.add(att_id)
        await self.flush()

    async def flush(self) -> None:
        """Tell a manager of every attachment released here and not acknowledged yet."""
        for att_id in sorted(self.pending):
            if self.detach_rpc is None:
                return
            try:
                await self.detach_rpc(dpb.DetachNetworkRequest(node_id=self.node_id, attachment_id=att_id))
            except Exception as exc:  # noqa: BLE001 - any failure: try again at the next reap
                _log.warning("attachment not released at the manager yet; retrying", attachment=att_id, error=str(exc))
                return
            self.pending.discard(att_id)
            _log.info("container detached", attachment=att_id)

    async def reap(self, now: float | None = None) -> list[str]:
        """Release the attachments whose containers are gone; returns their ids."""
        now = time.time() if now is None else now
        gone = []
        for att_id in self.ids():
            if att_id in self._attaching:
                continue
            record = self._record(att_id)
            if record is None or (record["started"] and not namespace_in_use(self.wiring.netns_path(att_id), self.proc)) \
                    or (not record["started"] and now - record["created"] > UNSTARTED_TTL_S):
                await self.release(att_id)
                gone.append(att_id)
        if self.pending:
            await self.flush()
        return gone

    def task_nets(self) -> list[TaskNet]:
        """The attached containers as DNS clients (never endpoints): their addresses and networks."""
        out = []
        for att_id in self.ids():
            record = self._record(att_id)
            if record is not None:
                addrs = {NODE: record["bridge_address"].split("/")[0], record["network"]: record["address"].split("/")[0]}
                out.append(TaskNet("", self.node_id, addrs, serving=False))
        return out
