"""The control API's networking half: network RPCs, service network checks, and the merge of the
allocator's records into what clients read.

Kept apart from ``controlapi`` (which mixes it in) so each stays one concern. Network names in a
service spec are resolved to network ids before the spec is stored (a later rename-free lookup, and
the allocator and dispatcher only ever see ids); an unknown network, a published port another service
holds, or a network that is not attachable for standalone use are refused with one message, nothing
written. Service, task and node reads get ``endpoint``, ``networks``/``bridge_address`` and ``network``
from the allocator's records, as a task's status is merged from the agent's report.
"""

from __future__ import annotations

import grpc

from shoal import log
from shoal.manager import networks
from shoal.manager.cache import ClusterCache
from shoal.manager.ipam import IpamStore
from shoal.manager.ipam.ports import clash
from shoal.manager.networks import find_network
from shoal.manager.store.base import Store
from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb

_log = log.get(__name__)
__all__ = ["NetworkAPI", "find_network", "network_problem", "node_view", "service_view", "task_view"]
CODES = {
    "invalid": grpc.StatusCode.INVALID_ARGUMENT,
    "exists": grpc.StatusCode.ALREADY_EXISTS,
    "in-use": grpc.StatusCode.FAILED_PRECONDITION,
    "missing": grpc.StatusCode.NOT_FOUND,
}


def network_problem(
    spec: pb.ServiceSpec,
    nets: dict[str, pb.Network],
    others: list[pb.Service],
    endpoints: dict[str, pb.ServiceEndpoint],
) -> str | None:
    """Resolve ``spec.networks`` targets to ids in place; the error for an unknown network or a taken port."""
    for att in spec.networks:
        net = find_network(nets, att.target)
        if net is None:
            return f"network {att.target} not found"
        if net.spec.ingress:
            return f"network {net.spec.name} is the routing mesh: services join it by publishing ports (-p)"
        att.target = net.id
    return clash(spec, others, endpoints)


def service_view(svc: pb.Service, cache: ClusterCache) -> None:
    """Fill ``svc.endpoint`` from the allocator's record (in place)."""
    rec = cache.get("endpoint", svc.id)
    if rec is not None:
        svc.endpoint.CopyFrom(rec.endpoint)
    else:
        svc.endpoint.mode = svc.spec.endpoint_mode


def task_view(task: pb.Task, cache: ClusterCache) -> None:
    """Fill a task's addresses from the allocator's record (in place)."""
    rec = cache.get("addresses", task.id)
    if rec is not None:
        del task.networks[:]
        task.networks.extend(rec.networks)
        task.bridge_address = rec.bridge_address


def node_view(node: pb.Node, cache: ClusterCache) -> None:
    """Fill a node's network facts from the allocator's record (in place)."""
    rec = cache.get("nodenet", node.id)
    if rec is not None:
        node.network.CopyFrom(rec)


class NetworkAPI:
    """The network RPCs (mixed into ``ControlAPI``, which provides store, cache and plan)."""

    store: Store
    cache: ClusterCache
    plan: IpamStore

    def _networks(self) -> dict[str, pb.Network]:
        return {k: v.obj for k, v in self.cache.objects["network"].items()}

    def _net_view(self, net: pb.Network) -> pb.Network:
        out = pb.Network()
        out.CopyFrom(net)
        out.meta.version = self.cache.rev("network", net.id)
        return out

    async def _network(self, ref: str, context: grpc.aio.ServicerContext) -> pb.Network:
        net = find_network(self._networks(), ref)
        if net is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"network {ref} not found")
        return net

    async def CreateNetwork(
        self, request: cpb.CreateNetworkRequest, context: grpc.aio.ServicerContext
    ) -> cpb.CreateNetworkResponse:
        if request.spec.ingress:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "the ingress network is built in: it cannot be created"
            )
        try:
            net, rev = await networks.create(self.store, self.plan, request.spec)
        except networks.NetworkError as exc:
            await context.abort(CODES[exc.kind], str(exc))
        await self.cache.wait_for(rev, 5.0)
        _log.info(
            "network created", network=net.spec.name, id=net.id, subnet=net.subnet, vxlan_id=net.vxlan_id
        )
        return cpb.CreateNetworkResponse(network=self._net_view(net))

    async def GetNetwork(
        self, request: cpb.GetNetworkRequest, context: grpc.aio.ServicerContext
    ) -> cpb.GetNetworkResponse:
        net = await self._network(request.network_id, context)
        using = networks.users(net, list(self.cache.services().values()))
        containers = networks.containers_on(net, self._attachments(), lambda aid: self.cache.get("addresses", aid))
        return cpb.GetNetworkResponse(network=self._net_view(net), services=using, containers=containers)

    def _attachments(self) -> list[pb.ContainerAttachment]:
        return [v.obj for v in self.cache.objects["attachment"].values()]  # type: ignore[misc]  # the attachment kind's message

    async def ListNetworks(
        self, request: cpb.ListNetworksRequest, context: grpc.aio.ServicerContext
    ) -> cpb.ListNetworksResponse:
        nets = sorted(self._networks().values(), key=lambda n: n.spec.name)
        return cpb.ListNetworksResponse(networks=[self._net_view(n) for n in nets])

    async def RemoveNetwork(
        self, request: cpb.RemoveNetworkRequest, context: grpc.aio.ServicerContext
    ) -> cpb.RemoveNetworkResponse:
        net = await self._network(request.network_id, context)
        if net.spec.ingress:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, "the ingress network is built in: it cannot be removed"
            )
        try:
            rev = await networks.remove(
                self.store,
                self.plan,
                net,
                self.cache.rev("network", net.id),
                list(self.cache.services().values()),
                self._attachments(),
            )
        except networks.NetworkError as exc:
            await context.abort(CODES[exc.kind], str(exc))
        await self.cache.wait_for(rev, 5.0)
        _log.info("network removed", network=net.spec.name, id=net.id)
        return cpb.RemoveNetworkResponse()

    async def _check_networks(
        self, spec: pb.ServiceSpec, context: grpc.aio.ServicerContext, service_id: str = ""
    ) -> None:
        others = [s for s in self.cache.services().values() if s.id != service_id]
        endpoints = {k: v.obj for k, v in self.cache.objects["endpoint"].items()}
        problem = network_problem(spec, self._networks(), others, endpoints)
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
