"""--host parsing, and the real sync gRPC client against an in-process server (deadline, errors)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from click.testing import CliRunner

from shoal.cli import client
from shoal.cli.main import main
from shoal.proto import control_pb2, control_pb2_grpc, types_pb2


@pytest.mark.parametrize(
    ("host", "target"),
    [
        ("unix:///run/shoal/manager.sock", "unix:///run/shoal/manager.sock"),
        ("unix:/tmp/m.sock", "unix:///tmp/m.sock"),
        ("/var/run/x.sock", "unix:///var/run/x.sock"),
        ("10.0.0.1:4242", "10.0.0.1:4242"),
        ("tcp://mgr:5000", "mgr:5000"),
        ("mgr", "mgr:4242"),
        ("[::1]:4300", "[::1]:4300"),
        ("[::1]", "[::1]:4242"),
    ],
)
def test_grpc_target(host: str, target: str) -> None:
    assert client.grpc_target(host) == target


def test_relative_unix_path_is_made_absolute() -> None:
    assert client.grpc_target("unix:run/m.sock") == "unix://" + os.path.abspath("run/m.sock")


@pytest.mark.parametrize("host", ["", "tcp://", "http://x:1", "mgr:notaport", "mgr:70000", "unix://"])
def test_bad_hosts(host: str) -> None:
    with pytest.raises(client.HostError):
        client.grpc_target(host)


class Servicer(control_pb2_grpc.ControlServicer):
    def GetService(self, request: control_pb2.GetServiceRequest, context: grpc.ServicerContext) -> control_pb2.GetServiceResponse:
        context.abort(grpc.StatusCode.NOT_FOUND, f"no such service: {request.service_id}")

    def ListNodes(self, request: control_pb2.ListNodesRequest, context: grpc.ServicerContext) -> control_pb2.ListNodesResponse:
        node = types_pb2.Node(id="n" * 25, description=types_pb2.NodeDescription(hostname="h1"))
        return control_pb2.ListNodesResponse(nodes=[node])


@pytest.fixture
def socket_path() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "manager.sock")
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        control_pb2_grpc.add_ControlServicer_to_server(Servicer(), server)
        server.add_insecure_port("unix://" + path)
        server.start()
        try:
            yield path
        finally:
            server.stop(0)


@pytest.mark.timeout(20)
def test_real_channel_round_trip_and_server_error(socket_path: str) -> None:
    runner = CliRunner()
    r = runner.invoke(main, ["--host", socket_path, "node", "ls", "-q"])
    assert r.exit_code == 0, r.output
    assert r.stdout.split() == ["n" * 25]
    r = runner.invoke(main, ["--host", f"unix:{socket_path}", "svc", "inspect", "web"])
    assert r.exit_code == 1 and r.stderr.strip() == "Error: no such service: web"


@pytest.mark.timeout(20)
def test_real_channel_unreachable_manager() -> None:
    with tempfile.TemporaryDirectory() as d:
        host = f"unix://{d}/absent.sock"
        r = CliRunner().invoke(main, ["--host", host, "svc", "ls"])
    assert r.exit_code == 1
    assert r.output.strip() == (
        f"Error: cannot connect to the shoal manager at {host}: is `shoal manager` running? (set --host or SHOAL_HOST)"
    )


def test_every_call_carries_the_deadline() -> None:
    seen = {}

    class Stub:
        def ListNodes(self, req: object, timeout: float | None = None) -> str:
            seen["timeout"] = timeout
            return "ok"

    timed = client._TimedStub(Stub(), grpc.insecure_channel("localhost:1"), 10.0)  # type: ignore[arg-type]
    assert timed.ListNodes(control_pb2.ListNodesRequest()) == "ok" and seen["timeout"] == 10.0
    timed.close()
