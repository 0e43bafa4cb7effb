"""The Control gRPC service: what the CLI calls to create, read, update and remove services and nodes.

Writes go straight to etcd through the typed store API, in compare-and-swap transactions (a service
and its name index together); reads come from the manager's cache after it has caught up with this
manager's own writes (``ClusterCache.wait_for``), so a client always reads what it just wrote.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from shoal import liveness, log, rollout, spec
from shoal.ids import new_id
from shoal.manager import sealing
from shoal.manager.cache import ClusterCache
from shoal.manager.cluster import ClusterError, unreachable_etcd_error, usable_etcd_endpoints
from shoal.manager.cluster import load as load_cluster
from shoal.manager.cluster import rotate as rotate_token
from shoal.manager.eventsapi import EventsAPI
from shoal.manager.ipam import IpamStore
from shoal.manager.netapi import NetworkAPI, node_view, service_view, task_view
from shoal.manager.placement import eligible_nodes
from shoal.manager.secretapi import SecretAPI, refs_exist
from shoal.manager.secretbox import SecretBox
from shoal.manager.store import objects
from shoal.manager.store.base import Store, StoreError
from shoal.manager.store.writes import Conflict, Write, Writer
from shoal.proto import control_pb2 as cpb
from shoal.proto import control_pb2_grpc as cgrpc
from shoal.proto import types_pb2 as pb

_log = log.get(__name__)
T = TypeVar("T")


def resolve(objs: dict[str, T], ref: str, name_of: Callable[[T], str]) -> T | None:
    """Find by full id, then by name, then by unique id prefix (docker's order)."""
    if ref in objs:
        return objs[ref]
    named = [o for o in objs.values() if name_of(o) == ref]
    if len(named) == 1:
        return named[0]
    pref = [o for oid, o in objs.items() if oid.startswith(ref)] if ref else []
    return pref[0] if len(pref) == 1 else None


class ControlAPI(NetworkAPI, EventsAPI, SecretAPI, cgrpc.ControlServicer):
    def __init__(
        self,
        store: Store,
        cache: ClusterCache,
        leader_id: Callable[[], str],
        cluster: Callable[[], pb.Cluster],
        image_known: Callable[[str], Awaitable[bool]] | None = None,
        unknown_window_s: float = 5.0,
        plan: IpamStore | None = None,
        kek: Callable[[], bytes] = lambda: b"",
        caller: Callable[[grpc.aio.ServicerContext], str] = lambda context: "",
        secret_box: Callable[[], SecretBox | None] = lambda: None,
    ) -> None:
        self.store = store
        self.plan = plan or IpamStore(store)  # the address plan (networks' subnets)
        self.writer = Writer(store)
        self.cache = cache
        self.leader_id = leader_id
        self.cluster = cluster
        self.image_known = image_known  # is a reference in the cluster's image store? None: no store
        self.image_hint: Callable[[str], Awaitable[list[str]]] | None = None  # the store's tags of that repository
        self.self_id = ""  # this manager's own node id: what `node inspect self` names
        self.kek = kek  # keys the MAC of role grants (Register issues a manager certificate only with one)
        self.caller = caller  # who is calling: recorded in role grants and tombstones
        self.secret_box = secret_box  # seals secrets with the cluster data key (None: secrets cannot be created)
        # A node without a session is Unknown (not Down) while this manager is too new to know:
        # its agents may still be reconnecting after a manager failover.
        self.unknown_until = time.monotonic() + unknown_window_s

    async def _caught_up(self, revision: int, timeout: float = 5.0) -> None:
        await self.cache.wait_for(revision, timeout)

    async def _service(self, ref: str, context: grpc.aio.ServicerContext) -> pb.Service:
        svc = resolve(self.cache.services(), ref, lambda s: s.spec.name)
        if svc is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no such service: {ref}")
        return svc

    async def _validated(self, s: pb.ServiceSpec, context: grpc.aio.ServicerContext, resolve_image: bool = True) -> pb.ServiceSpec:
        try:
            spec.validate(s)
        except spec.SpecError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        image = s.container.image
        if resolve_image and image not in spec.BUILTIN_IMAGES and self.image_known is not None and not await self.image_known(image):
            tags = await self.image_hint(image) if self.image_hint is not None else []
            loaded = f"; the cluster has {', '.join(tags)}" if tags else ""
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"invalid service spec: image: no such image: {image}{loaded} (load it into the cluster with "
                "`shoal image load --cluster -i FILE`, or pass --no-resolve-image to use an image loaded on the nodes)",
            )
        return spec.with_defaults(s)

    def _with_version(self, svc: pb.Service) -> pb.Service:
        out = pb.Service()
        out.CopyFrom(svc)
        out.meta.version = self.cache.rev("service", svc.id)
        service_view(out, self.cache)
        return out

    def _desired(self, svc: pb.Service) -> int:
        """Replicas, or for global services the nodes that should run one."""
        if svc.spec.mode in (pb.ServiceSpec.GLOBAL, pb.ServiceSpec.GLOBAL_JOB):
            return len(eligible_nodes(svc, self.cache.nodes(), self.cache.node_ready))
        return svc.spec.replicas

    async def CreateService(self, request: cpb.CreateServiceRequest, context: grpc.aio.ServicerContext) -> cpb.CreateServiceResponse:
        s = await self._validated(request.spec, context, not request.no_resolve_image)
        await self._check_networks(s, context)
        await self._check_refs(s, context)
        now = time.time_ns()
        svc = pb.Service(id=new_id(), spec=s, spec_version=1)
        svc.meta.created_at_ns = svc.meta.updated_at_ns = now

        async def applied() -> int:  # after a write whose outcome is unknown: is our service there?
            got = await objects.services.lookup(self.store, objects.SERVICE_NAME, s.name)
            return got.rev if got is not None and got.obj.id == svc.id else 0

        try:
            rev = await self.writer.apply_retrying(Write.join([objects.services.create(svc), refs_exist(s.container)]), applied)
        except Conflict:
            if problem := await self.missing_ref(s.container):  # removed after the spec was checked
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid service spec: {problem}")
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, f"service {s.name} already exists")
        await self._caught_up(rev)
        _log.info("service created", service=s.name, id=svc.id)
        return cpb.CreateServiceResponse(service=self._with_version(svc))

    async def GetService(self, request: cpb.GetServiceRequest, context: grpc.aio.ServicerContext) -> cpb.GetServiceResponse:
        return cpb.GetServiceResponse(service=self._with_version(await self._service(request.service_id, context)))

    async def ListServices(self, request: cpb.ListServicesRequest, context: grpc.aio.ServicerContext) -> cpb.ListServicesResponse:
        services = [s for s in self.cache.services().values() if not request.names or s.spec.name in request.names]
        summaries: dict[str, cpb.ServiceSummary] = {s.id: cpb.ServiceSummary(desired=self._desired(s)) for s in services}
        for t in self.cache.tasks().values():
            summ = summaries.get(t.service_id)
            if summ is None:
                continue
            status = self.cache.status(t)
            st = status.state
            if t.desired_state == pb.RUNNING and rollout.ready(t.spec, status):  # running, and healthy where there is a check
                summ.running += 1
            elif st == pb.COMPLETE:
                summ.completed += 1
        services.sort(key=lambda s: s.spec.name)
        return cpb.ListServicesResponse(services=[self._with_version(s) for s in services], summaries=summaries)

    async def UpdateService(self, request: cpb.UpdateServiceRequest, context: grpc.aio.ServicerContext) -> cpb.UpdateServiceResponse:
        cur = await self._service(request.service_id, context)
        now = time.time_ns()
        if request.rollback:
            if not cur.HasField("previous_spec"):
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"service {cur.spec.name} does not have a previous spec")
            svc = rollout.rolled_back(cur, now, "manually requested rollback")
        else:
            same_image = request.spec.container.image == cur.spec.container.image
            s = await self._validated(request.spec, context, not (request.no_resolve_image or same_image))
            if s.name != cur.spec.name:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid service spec: name: a service cannot be renamed")
            await self._check_networks(s, context, cur.id)
            await self._check_refs(s, context)
            svc = rollout.respecced(cur, s, now)
        try:
            rev = await self.writer.apply(Write.join([objects.services.update(svc, request.version, old=cur), refs_exist(svc.spec.container)]))
        except Conflict:
            if problem := await self.missing_ref(svc.spec.container):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid service spec: {problem}")
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "update out of sequence: the service changed since it was read; read it again")
        _log.info("service updated", service=svc.spec.name, id=svc.id, spec_version=svc.spec_version)
        await self._caught_up(rev)
        return cpb.UpdateServiceResponse(service=self._with_version(svc))

    async def RemoveService(self, request: cpb.RemoveServiceRequest, context: grpc.aio.ServicerContext) -> cpb.RemoveServiceResponse:
        svc = await self._service(request.service_id, context)
        await self._caught_up(await self.writer.apply(objects.services.delete(svc)))
        _log.info("service removed", service=svc.spec.name, id=svc.id)
        return cpb.RemoveServiceResponse()

    async def ListTasks(self, request: cpb.ListTasksRequest, context: grpc.aio.ServicerContext) -> cpb.ListTasksResponse:
        service_ids = set()
        for ref in request.service_ids:
            service_ids.add((await self._service(ref, context)).id)
        node_ids = set()
        for ref in request.node_ids:
            node_ids.add((await self._node(ref, context)).id)
        out = []
        for t in self.cache.tasks().values():
            if (service_ids and t.service_id not in service_ids) or (node_ids and t.node_id not in node_ids):
                continue
            m = pb.Task()
            m.CopyFrom(t)
            m.status.CopyFrom(self.cache.status(t))
            m.meta.version = self.cache.rev("task", t.id)
            task_view(m, self.cache)
            out.append(m)
        out.sort(key=lambda t: (t.service_name, t.slot, -t.meta.created_at_ns))
        return cpb.ListTasksResponse(tasks=out)

    def _disruption(self) -> str:
        """The mass-disruption note for down nodes, "" when at most half of the nodes are down."""
        nodes = self.cache.nodes()
        down = sum(1 for nid in nodes if not self.cache.node_ready(nid))
        return liveness.disruption_note(down, len(nodes)) if liveness.disrupted(down, len(nodes)) else ""

    def _node_view(self, node: pb.Node, disruption: str | None = None) -> pb.Node:
        n = pb.Node()
        n.CopyFrom(node)
        n.meta.version = self.cache.rev("node", node.id)
        ready = self.cache.node_ready(node.id)
        if ready:
            n.status.state = pb.NodeStatus.READY
        elif time.monotonic() < self.unknown_until:
            n.status.state = pb.NodeStatus.UNKNOWN
        else:
            n.status.state = pb.NodeStatus.DOWN
            n.status.message = self._disruption() if disruption is None else disruption
        n.status.addr = node.description.addr
        node_view(n, self.cache)
        if node.spec.role == pb.NodeSpec.MANAGER:
            mgr = self.cache.objects["manager"].get(node.id)
            n.manager_status.addr = mgr.obj.addr if mgr else ""
            n.manager_status.leader = self.leader_id() == node.id
            n.manager_status.reachability = "reachable" if mgr else "unreachable"
            n.manager_status.etcd_endpoints.extend(mgr.obj.etcd_endpoints if mgr else [])
        return n

    async def _node(self, ref: str, context: grpc.aio.ServicerContext) -> pb.Node:
        lookup = self.self_id if ref == "self" and self.self_id else ref  # docker's `node inspect self`: this manager's node
        node = resolve(self.cache.nodes(), lookup, lambda n: n.description.hostname)
        if node is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no such node: {ref}")
        return node

    async def ListNodes(self, request: cpb.ListNodesRequest, context: grpc.aio.ServicerContext) -> cpb.ListNodesResponse:
        nodes = sorted(self.cache.nodes().values(), key=lambda n: (n.description.hostname, n.id))
        disruption = self._disruption()
        return cpb.ListNodesResponse(nodes=[self._node_view(n, disruption) for n in nodes])

    async def GetNode(self, request: cpb.GetNodeRequest, context: grpc.aio.ServicerContext) -> cpb.GetNodeResponse:
        return cpb.GetNodeResponse(node=self._node_view(await self._node(request.node_id, context)))

    def _managers(self) -> list[str]:
        return [n.id for n in self.cache.nodes().values() if n.spec.role == pb.NodeSpec.MANAGER]

    async def UpdateNode(self, request: cpb.UpdateNodeRequest, context: grpc.aio.ServicerContext) -> cpb.UpdateNodeResponse:
        cur = await self._node(request.node_id, context)
        if cur.spec.role == pb.NodeSpec.MANAGER and request.spec.role != pb.NodeSpec.MANAGER and self._managers() == [cur.id]:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "attempting to demote the last manager of the cluster")
        if cur.spec.role != pb.NodeSpec.MANAGER and request.spec.role == pb.NodeSpec.MANAGER:
            statuses = [v.obj for v in self.cache.objects["manager"].values()]
            if not usable_etcd_endpoints(statuses, cur.description.addr):
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, unreachable_etcd_error(request.node_id))
        node = pb.Node()
        node.CopyFrom(cur)
        node.spec.CopyFrom(request.spec)
        node.meta.updated_at_ns = time.time_ns()
        if node.spec.role != cur.spec.role:  # made here, by an admin: the grant a certificate of the new role needs
            node.role_grant.CopyFrom(sealing.grant(self.kek(), node.id, node.spec.role, self.caller(context), node.meta.updated_at_ns))
        version = request.version or self.cache.rev("node", node.id)
        try:
            rev = await self.writer.apply(objects.nodes.update(node, version))
        except Conflict:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "update out of sequence: the node changed since it was read; read it again")
        await self._caught_up(rev)
        _log.info("node updated", node=node.id, role=pb.NodeSpec.Role.Name(node.spec.role), availability=pb.NodeSpec.Availability.Name(node.spec.availability))
        return cpb.UpdateNodeResponse(node=self._node_view(node))

    async def RemoveNode(self, request: cpb.RemoveNodeRequest, context: grpc.aio.ServicerContext) -> cpb.RemoveNodeResponse:
        node = await self._node(request.node_id, context)
        if node.spec.role == pb.NodeSpec.MANAGER:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"node {node.id} is a cluster manager; demote it before removal")
        if self.cache.node_ready(node.id) and not request.force:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"node {node.id} is not down and can't be removed (use --force)")
        tomb = pb.Tombstone(node_id=node.id, removed_at_ns=time.time_ns(), removed_by=self.caller(context), cert_serials=[node.cert_serial] if node.cert_serial else [])
        try:
            rev = await self.writer.apply(objects.remove_node(node, self.cache.rev("node", node.id), tomb))  # and its session
        except Conflict:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "the node changed while it was being removed; try again")
        await self._caught_up(rev)
        _log.info("node removed", node=node.id, force=request.force)
        return cpb.RemoveNodeResponse()

    async def GetCluster(self, request: cpb.GetClusterRequest, context: grpc.aio.ServicerContext) -> cpb.GetClusterResponse:
        managers = sorted(m.addr for m in (v.obj for v in self.cache.objects["manager"].values()) if m.addr)
        return cpb.GetClusterResponse(cluster=await load_cluster(self.store, self.kek()) or self.cluster(), managers=managers)  # tokens may rotate elsewhere

    async def RotateJoinToken(self, request: cpb.RotateJoinTokenRequest, context: grpc.aio.ServicerContext) -> cpb.RotateJoinTokenResponse:
        try:
            c = await rotate_token(self.store, request.role, self.kek())
        except ClusterError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        _log.info("join token rotated", role=request.role)
        return cpb.RotateJoinTokenResponse(cluster=c)


def _store_errors_unavailable(method: Callable) -> Callable:
    """A store that cannot be reached becomes UNAVAILABLE with a readable message, not an unexpected error."""

    @functools.wraps(method)
    async def wrapper(self: ControlAPI, request: object, context: grpc.aio.ServicerContext) -> object:
        try:
            return await method(self, request, context)
        except StoreError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"the cluster store is unavailable: {exc}")

    return wrapper


for _name in [n for n in vars(cgrpc.ControlServicer) if n[:1].isupper()]:
    if getattr(ControlAPI, _name) is not getattr(cgrpc.ControlServicer, _name):  # implemented here or in a mixin
        setattr(ControlAPI, _name, _store_errors_unavailable(getattr(ControlAPI, _name)))
