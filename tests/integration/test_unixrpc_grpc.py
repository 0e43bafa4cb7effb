"""shoal/cli/unixrpc.py (the CLI's grpcio-free unary call) against real gRPC servers on unix sockets: a
grpcio server whose handlers reply, fail, stall and send big replies, then the real manager; and the
fast ``shoal svc ls`` (shoal/cli/fastsvc.py) against click's, whole process against whole process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from shoal.cli import hosts, unixrpc
from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb
from tests.fixtures.cluster import spec

ECHO, FAIL, SLOW, BIG = "/t.T/Echo", "/t.T/Fail", "/t.T/Slow", "/t.T/Big"
MESSAGE = "nö such thing: 100% {gone}\n"


def _echo(req: bytes, ctx: grpc.ServicerContext) -> bytes:
    return req[::-1]


def _fail(req: bytes, ctx: grpc.ServicerContext) -> bytes:
    ctx.abort(grpc.StatusCode[req.decode()], MESSAGE)


def _slow(req: bytes, ctx: grpc.ServicerContext) -> bytes:
    time.sleep(1.5)
    return b"late"


def _big(req: bytes, ctx: grpc.ServicerContext) -> bytes:
    return b"z" * int(req.decode())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A grpcio server on a unix socket with the handlers above (bytes in, bytes out); yields its path."""
    handlers = {name: grpc.unary_unary_rpc_method_handler(fn) for name, fn in
                (("Echo", _echo), ("Fail", _fail), ("Slow", _slow), ("Big", _big))}
    srv = grpc.server(futures.ThreadPoolExecutor(4), options=[("grpc.max_send_message_length", 8 << 20)])
    srv.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("t.T", handlers)])
    path = str(tmp_path / "g.sock")
    srv.add_insecure_port(f"unix:{path}")
    srv.start()
    yield path
    srv.stop(0)


def grpcio_call(path: str, method: str, req: bytes, timeout: float = 10.0) -> bytes | tuple[str, str]:
    """The same call through grpcio: the reply, or (code name, details)."""
    with grpc.insecure_channel(f"unix:{path}") as ch:
        try:
            return ch.unary_unary(method)(req, timeout=timeout)
        except grpc.RpcError as err:
            return err.code().name, err.details()  # type: ignore[attr-defined]


def lite_call(path: str, method: str, req: bytes, timeout: float = 10.0) -> bytes | tuple[str, str]:
    try:
        return unixrpc.call(path, method, req, timeout)
    except unixrpc.RpcFailure as exc:
        return exc.code, exc.details


def test_replies_of_every_size_arrive_whole(server: str) -> None:
    for size in (0, 1, 16379, 70000, 1 << 20):
        req = os.urandom(min(size, 60000))
        assert lite_call(server, ECHO, req) == req[::-1]
        assert lite_call(server, BIG, str(size).encode()) == b"z" * size
    for _ in range(3):  # one connection per call: nothing is left behind to trip the next
        assert lite_call(server, ECHO, b"ab") == b"ba"


@pytest.mark.parametrize("code", ["NOT_FOUND", "INVALID_ARGUMENT", "FAILED_PRECONDITION", "PERMISSION_DENIED", "UNAVAILABLE"])
def test_a_failure_reads_as_grpcio_reads_it(server: str, code: str) -> None:
    assert lite_call(server, FAIL, code.encode()) == grpcio_call(server, FAIL, code.encode()) == (code, MESSAGE)


def test_unknown_methods_stalls_and_oversized_replies(server: str) -> None:
    assert lite_call(server, "/t.T/Nope", b"")[0] == grpcio_call(server, "/t.T/Nope", b"")[0] == "UNIMPLEMENTED"
    t0 = time.monotonic()
    assert lite_call(server, SLOW, b"", timeout=0.3)[0] == "DEADLINE_EXCEEDED"
    assert time.monotonic() - t0 < 1.2
    assert lite_call(server, BIG, str(5 << 20).encode())[0] == grpcio_call(server, BIG, str(5 << 20).encode())[0] == "RESOURCE_EXHAUSTED"


async def test_list_services_from_the_real_manager(cluster) -> None:  # type: ignore[no-untyped-def]
    for name, replicas in (("web", 2), ("api", 1), ("db", 0)):
        await cluster.control.CreateService(cpb.CreateServiceRequest(spec=spec(name, replicas=replicas, labels={"x": "1"})))
    sock = str(cluster.tmp / "m.sock")
    raw = await asyncio.to_thread(unixrpc.call, sock, "/shoal.v1.Control/ListServices", b"", 10.0)
    lite = cpb.ListServicesResponse.FromString(raw)
    real = await cluster.control.ListServices(cpb.ListServicesRequest())
    assert sorted(s.spec.name for s in lite.services) == ["api", "db", "web"]
    assert {s.id: s for s in lite.services} == {s.id: s for s in real.services}
    req = cpb.GetServiceRequest(service_id="nope").SerializeToString()
    with pytest.raises(unixrpc.RpcFailure) as e:
        await asyncio.to_thread(unixrpc.call, sock, "/shoal.v1.Control/GetService", req, 10.0)
    try:
        await cluster.control.GetService(cpb.GetServiceRequest(service_id="nope"))
    except grpc.RpcError as err:
        assert (e.value.code, e.value.details) == (err.code().name, err.details())  # type: ignore[attr-defined]
    else:
        raise AssertionError("GetService of an unknown service succeeded")


CLICK = "import sys; from shoal.cli.main import main; sys.argv[0] = 'shoal'; main()"
FAST = ("import atexit, os, sys; atexit.register(lambda: open(os.environ['MODS'], 'w').write(' '.join(sys.modules)));"
        " from shoal.cli.entry import main; sys.argv[0] = 'shoal'; main()")


def both(tmp: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess, set[str]]:
    """``shoal ARGS`` through click, then through the executable's entry (entry.py); and the modules the latter loaded."""
    env = {**os.environ, **(env or {}), "MODS": str(tmp / "mods")}
    env.pop("SHOAL_LAB", None)
    run = [subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=60)
           for code in (CLICK, FAST)]
    return run[0], run[1], set((tmp / "mods").read_text().split())


def same(a: subprocess.CompletedProcess, b: subprocess.CompletedProcess) -> bool:
    return (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr)


async def test_svc_ls_prints_what_click_prints_without_loading_click_or_grpcio(cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s = spec("web", replicas=2, labels={"tier": "front"})
    s.labels["tier"] = "front"
    s.ports.add(target_port=80, published_port=8080, protocol=pb.PortConfig.TCP)
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=s))
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=spec("api", replicas=1)))
    host = f"unix://{cluster.tmp / 'm.sock'}"
    variants = [["svc", "ls"], ["service", "list", "-q"], ["svc", "ls", "--format", "json"], ["svc", "ls", "-f", "name=we"],
                ["svc", "ls", "--filter=label=tier=front", "--format=JSON"], ["svc", "ls", "-fmode=global"]]
    for args in variants:
        click_run, fast_run, mods = await asyncio.to_thread(both, tmp_path, "-H", host, *args)
        assert click_run.returncode == 0 and same(click_run, fast_run), (args, click_run, fast_run)
        assert "click" not in mods and "grpc" not in mods, args
        assert "google.protobuf" not in mods and "typing" not in mods, f"{args}: the reply read by svclswire.py, not protobuf"
        assert "hpack" not in mods, "the manager's reply headers needed the hpack package (hpackmini.py)"
    click_run, fast_run, mods = await asyncio.to_thread(both, tmp_path, "svc", "ls", env={"SHOAL_HOST": host})
    assert same(click_run, fast_run) and "web" in fast_run.stdout and "click" not in mods
    for args in (["svc", "ls", "--help"], ["svc", "ls", "-f", "colour=red"], ["svc", "ls", "--format", "{{.Name}}"]):
        click_run, fast_run, mods = await asyncio.to_thread(both, tmp_path, "-H", host, *args)
        assert same(click_run, fast_run) and "click" in mods, args  # left to click, which says the same


def test_a_manager_that_is_down_reads_the_same(tmp_path: Path) -> None:
    for host in (f"unix://{tmp_path}/none.sock", str(tmp_path)):
        click_run, fast_run, mods = both(tmp_path, "-H", host, "svc", "ls")
        assert same(click_run, fast_run), (click_run, fast_run)
        assert fast_run.returncode == 1 and fast_run.stderr == f"Error: {hosts.cannot_connect_message(host)}\n"
        assert "grpc" not in mods
