"""Standalone containers on attachable networks: the dispatcher's side of ``shoal run --network``.

As ``docker run --network`` on a swarm node: the node's agent asks its manager to attach a container
to a network; the manager records a ``ContainerAttachment`` (swarmkit makes a network-attachment task)
on the calling node, the leader's allocator gives it an address on the network and one on the node's
bridge (as it does a task's), and the node is put on the network (its VXLAN peers follow). The call is
answered once both are recorded, so the agent can wire the container's namespace at once. Only a
network created ``--attachable`` may be joined this way, with docker's refusal otherwise. Detaching
deletes the record; the allocator then releases the addresses. A node may only attach and detach its
own containers (its certificate says which node it is).
"""

from __future__ import annotations

import asyncio
import time

import grpc

from shoal.ids import new_id
from shoal.manager.cache import ClusterCache
from shoal.manager.networks import find_network
from shoal.manager.store import objects
from shoal.manager.store.writes import Writer
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb

ALLOCATION_TIMEOUT_S = 15.0
"""How long an attach waits for the leader's allocator (it answers within a pass, ~ms; a cluster
without a leader does not answer at all, and the attach is then given back)."""


class AttachError(Exception):
    """A refused attach or detach: the gRPC code and the message the user sees."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def attachable(networks: dict[str, pb.Network], ref: str) -> pb.Network:
    """The network ``ref`` names, if a standalone container may join it; else docker's refusal. Pure."""
    net = find_network(networks, ref)
    if net is None:
        raise AttachError(grpc.StatusCode.NOT_FOUND, f"network {ref} not found")
    if net.spec.ingress or not net.spec.attachable:
        raise AttachError(grpc.StatusCode.PERMISSION_DENIED, f"network {net.spec.name} not manually attachable")
    return net


def allocated(cache: ClusterCache, att: pb.ContainerAttachment) -> dpb.AttachNetworkResponse | None:
    """The answer to an attach once its addresses are recorded and its node is on the network, else None."""
    rec = cache.get("addresses", att.id)
    info = cache.get("nodenet", att.node_id)
    net = cache.get("network", att.network_id)
    if rec is None or not rec.bridge_address or info is None or net is None:
        return None
    on_net = [a for a in rec.networks if a.network_id == att.network_id and a.address]
    if not on_net or not any(o.network_id == att.network_id for o in info.overlays):
        return None
    out = pb.ContainerAttachment()
    out.CopyFrom(att)
    out.address = on_net[0].address
    return dpb.AttachNetworkResponse(attachment=out, addresses=rec, network=net)


async def attach(cache: ClusterCache, writer: Writer, node_id: str, request: dpb.AttachNetworkRequest,
                 timeout: float = ALLOCATION_TIMEOUT_S) -> dpb.AttachNetworkResponse:
    """Record the attachment and wait for its addresses (see the module docstring)."""
    if not request.container_id:
        raise AttachError(grpc.StatusCode.INVALID_ARGUMENT, "an attachment needs the container's id")
    net = attachable({k: v.obj for k, v in cache.objects["network"].items()}, request.network)
    att = pb.ContainerAttachment(
        id=new_id(), node_id=node_id, network_id=net.id, container_id=request.container_id,
        container_name=request.container_name, created_at_ns=time.time_ns(),
    )  # fmt: skip
    await writer.apply(objects.attachments.create(att))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = allocated(cache, att)
        if done is not None:
            return done
        await asyncio.sleep(0.02)
    await writer.apply_each([objects.attachments.delete(att.id)])
    raise AttachError(grpc.StatusCode.UNAVAILABLE,
                      f"no address on network {net.spec.name} within {timeout:g} s (is a manager the leader?)")


async def detach(cache: ClusterCache, writer: Writer, node_id: str, attachment_id: str) -> None:
    """Delete the caller's attachment (nothing when it is already gone)."""
    att = cache.get("attachment", attachment_id)
    if att is None:
        return
    if att.node_id != node_id:
        raise AttachError(grpc.StatusCode.PERMISSION_DENIED, f"attachment {attachment_id} belongs to another node")
    await writer.apply_each([objects.attachments.delete(attachment_id)])

