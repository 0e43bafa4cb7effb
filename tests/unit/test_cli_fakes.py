"""An in-memory stand-in for the Control stub, shared by the CLI tests (this module has no tests).

Tests inject it through the root context object:
``CliRunner().invoke(main, args, obj={"connect": lambda host: fake})``.
"""

from __future__ import annotations

import time
from typing import Any

import grpc
from click.testing import CliRunner, Result

from shoal.cli.main import main
from shoal.proto import control_pb2, types_pb2

NOW_NS = int(time.time() * 1e9)


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(details)
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class FakeStub:
    """Services, tasks and nodes in dicts; every request is recorded in ``calls``."""

    def __init__(self) -> None:
        self.services: dict[str, types_pb2.Service] = {}
        self.tasks: list[types_pb2.Task] = []
        self.nodes: list[types_pb2.Node] = []
        self.networks: dict[str, types_pb2.Network] = {}
        self.summaries: dict[str, control_pb2.ServiceSummary] = {}
        self.calls: list[tuple[str, Any]] = []
        self.fail: dict[str, list[Exception]] = {}  # method -> errors to raise, one per call
        self.auto_run = True  # CreateService/UpdateService start the tasks at once
        self.next_id = 1

    def _record(self, name: str, req: Any) -> None:
        self.calls.append((name, req))
        errors = self.fail.get(name)
        if errors:
            raise errors.pop(0)

    def called(self, name: str) -> list[Any]:
        return [req for n, req in self.calls if n == name]

    def _find(self, ref: str) -> types_pb2.Service:
        for s in self.services.values():
            if ref in (s.id, s.spec.name) or s.id.startswith(ref):
                return s
        raise FakeRpcError(grpc.StatusCode.NOT_FOUND, f"no such service: {ref}")

    def add_service(self, spec: types_pb2.ServiceSpec, sid: str | None = None) -> types_pb2.Service:
        sid = sid or f"svc{self.next_id:022d}"
        self.next_id += 1
        svc = types_pb2.Service(id=sid, spec=spec, meta=types_pb2.Meta(version=1, created_at_ns=NOW_NS))
        self.services[sid] = svc
        if self.auto_run:
            self.run_tasks(svc)
        return svc

    def run_tasks(self, svc: types_pb2.Service) -> None:
        """Make the tasks match the spec at once: slots 1..replicas running, the rest gone."""
        self.tasks = [t for t in self.tasks if t.service_id != svc.id]
        replicas = svc.spec.replicas if svc.spec.HasField("replicas") else 1
        for slot in range(1, replicas + 1):
            self.tasks.append(
                types_pb2.Task(
                    id=f"task{svc.id[-4:]}{slot:017d}",
                    service_id=svc.id,
                    service_name=svc.spec.name,
                    slot=slot,
                    node_id="node1",
                    spec=svc.spec,
                    desired_state=types_pb2.RUNNING,
                    status=types_pb2.TaskStatus(state=types_pb2.RUNNING, timestamp_ns=NOW_NS),
                    meta=types_pb2.Meta(created_at_ns=NOW_NS),
                )
            )

    # --- the Control API -------------------------------------------------------------------
    def CreateService(self, req: control_pb2.CreateServiceRequest) -> control_pb2.CreateServiceResponse:
        self._record("CreateService", req)
        spec = types_pb2.ServiceSpec()
        spec.CopyFrom(req.spec)
        if not spec.name:
            spec.name = f"auto{self.next_id}"
        return control_pb2.CreateServiceResponse(service=self.add_service(spec))

    def GetService(self, req: control_pb2.GetServiceRequest) -> control_pb2.GetServiceResponse:
        self._record("GetService", req)
        return control_pb2.GetServiceResponse(service=self._find(req.service_id))

    def ListServices(self, req: control_pb2.ListServicesRequest) -> control_pb2.ListServicesResponse:
        self._record("ListServices", req)
        resp = control_pb2.ListServicesResponse()
        for s in self.services.values():
            if not req.names or s.spec.name in req.names:
                resp.services.append(s)
                if s.id in self.summaries:
                    resp.summaries[s.id].CopyFrom(self.summaries[s.id])
        return resp

    def UpdateService(self, req: control_pb2.UpdateServiceRequest) -> control_pb2.UpdateServiceResponse:
        self._record("UpdateService", req)
        svc = self.services[req.service_id]
        if req.version != svc.meta.version:
            raise FakeRpcError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "update out of sequence: the service changed since it was read; read it again",
            )
        svc.spec.CopyFrom(req.spec)
        svc.meta.version += 1
        if self.auto_run:
            self.run_tasks(svc)
        return control_pb2.UpdateServiceResponse(service=svc)

    def RemoveService(self, req: control_pb2.RemoveServiceRequest) -> control_pb2.RemoveServiceResponse:
        self._record("RemoveService", req)
        svc = self._find(req.service_id)
        del self.services[svc.id]
        return control_pb2.RemoveServiceResponse()

    def ListTasks(self, req: control_pb2.ListTasksRequest) -> control_pb2.ListTasksResponse:
        self._record("ListTasks", req)
        wanted = set(req.service_ids)
        return control_pb2.ListTasksResponse(tasks=[t for t in self.tasks if not wanted or t.service_id in wanted])

    def ListNodes(self, req: control_pb2.ListNodesRequest) -> control_pb2.ListNodesResponse:
        self._record("ListNodes", req)
        return control_pb2.ListNodesResponse(nodes=self.nodes)

    def GetNode(self, req: control_pb2.GetNodeRequest) -> control_pb2.GetNodeResponse:
        self._record("GetNode", req)
        for n in self.nodes:
            if req.node_id in (n.id, n.description.hostname):
                return control_pb2.GetNodeResponse(node=n)
        raise FakeRpcError(grpc.StatusCode.NOT_FOUND, f"no such node: {req.node_id}")

    # --- networks (subnets handed out as the manager would, overlaps refused) ------------------
    def _net(self, ref: str) -> types_pb2.Network:
        for n in self.networks.values():
            if ref in (n.id, n.spec.name) or n.id.startswith(ref):
                return n
        raise FakeRpcError(grpc.StatusCode.NOT_FOUND, f"network {ref} not found")

    def CreateNetwork(self, req: control_pb2.CreateNetworkRequest) -> control_pb2.CreateNetworkResponse:
        self._record("CreateNetwork", req)
        if any(n.spec.name == req.spec.name for n in self.networks.values()):
            raise FakeRpcError(grpc.StatusCode.ALREADY_EXISTS, f"network with name {req.spec.name} already exists")
        nid = f"net{self.next_id:022d}"
        self.next_id += 1
        subnet = req.spec.subnet or f"10.210.{len(self.networks)}.0/24"
        net = types_pb2.Network(id=nid, spec=req.spec, subnet=subnet, vxlan_id=4096 + len(self.networks), meta=types_pb2.Meta(created_at_ns=NOW_NS))
        net.spec.driver = net.spec.driver or "overlay"
        self.networks[nid] = net
        return control_pb2.CreateNetworkResponse(network=net)

    def ListNetworks(self, req: control_pb2.ListNetworksRequest) -> control_pb2.ListNetworksResponse:
        self._record("ListNetworks", req)
        return control_pb2.ListNetworksResponse(networks=sorted(self.networks.values(), key=lambda n: n.spec.name))

    def GetNetwork(self, req: control_pb2.GetNetworkRequest) -> control_pb2.GetNetworkResponse:
        self._record("GetNetwork", req)
        net = self._net(req.network_id)
        users = [s.spec.name for s in self.services.values() if any(a.target in (net.id, net.spec.name) for a in s.spec.networks)]
        return control_pb2.GetNetworkResponse(network=net, services=users)

    def RemoveNetwork(self, req: control_pb2.RemoveNetworkRequest) -> control_pb2.RemoveNetworkResponse:
        self._record("RemoveNetwork", req)
        net = self._net(req.network_id)
        del self.networks[net.id]
        return control_pb2.RemoveNetworkResponse()


def run(fake: FakeStub | None, *args: str, **kwargs: Any) -> Result:
    """Invoke ``shoal ARGS`` with ``fake`` as the manager; stderr is kept apart in ``result.stderr``."""
    connects: list[str] = []

    def connect(host: str) -> FakeStub:
        connects.append(host)
        if fake is None:
            raise AssertionError("this command must not contact the manager")
        return fake

    result = CliRunner().invoke(main, list(args), obj={"connect": connect}, catch_exceptions=False, **kwargs)
    result.connects = connects  # type: ignore[attr-defined]
    return result
