"""The CLI over TCP: mutual TLS with an admin certificate, where the certificate files are looked for, the
deadline every call carries, and the one line each failure becomes.

A real gRPC server on loopback with the manager's TLS settings (server certificate for ``shoal-manager``,
client certificates required); certificates from ``shoal.tls``, files in the test's tmp dirs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import click
import grpc
import pytest

from shoal import tls
from shoal.cli import client
from shoal.proto import control_pb2, control_pb2_grpc, types_pb2
from tests.fixtures.cluster import free_port

CLUSTER = "c" * 25


class Servicer(control_pb2_grpc.ControlServicer):
    def __init__(self) -> None:
        self.release = threading.Event()

    def ListNodes(self, request, context):  # type: ignore[no-untyped-def]
        return control_pb2.ListNodesResponse(nodes=[types_pb2.Node(id="n1")])

    def ListServices(self, request, context):  # type: ignore[no-untyped-def]
        self.release.wait(5)  # a wedged manager
        return control_pb2.ListServicesResponse()


def _pair(ca: tuple[bytes, bytes], node: str, role: str) -> tuple[bytes, bytes]:
    key = tls.new_key()
    return tls.sign(ca[0], ca[1], key.public_key(), node, role, CLUSTER), tls.key_pem(key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    ca = tls.new_ca()
    d = tmp_path_factory.mktemp("certs")
    admin_crt, admin_key = _pair(ca, "admin", "admin")
    (d / "ca.crt").write_bytes(ca[0])
    (d / "admin.crt").write_bytes(admin_crt)
    (d / "admin.key").write_bytes(admin_key)
    stranger = tmp_path_factory.mktemp("stranger")
    other = tls.new_ca()
    s_crt, s_key = _pair(other, "admin", "admin")
    (stranger / "ca.crt").write_bytes(ca[0])
    (stranger / "admin.crt").write_bytes(s_crt)
    (stranger / "admin.key").write_bytes(s_key)
    return {"ca": ca, "dir": d, "stranger": stranger, "server": _pair(ca, "m" * 25, "manager")}


@pytest.fixture
def server(pki) -> Iterator[tuple[str, Servicer]]:
    crt, key = pki["server"]  # type: ignore[misc]
    creds = grpc.ssl_server_credentials([(key, crt)], root_certificates=pki["ca"][0], require_client_auth=True)  # type: ignore[index]
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = Servicer()
    control_pb2_grpc.add_ControlServicer_to_server(servicer, srv)
    port = free_port()
    srv.add_secure_port(f"127.0.0.1:{port}", creds)
    srv.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        servicer.release.set()
        srv.stop(0)


@pytest.fixture(autouse=True)
def no_tls_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("SHOAL_TLS_CACERT", "SHOAL_TLS_CERT", "SHOAL_TLS_KEY", "SHOAL_CERT_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # ~/.shoal/certificates: empty


@pytest.mark.timeout(30)
def test_an_admin_certificate_from_shoal_cert_path_reaches_the_manager(server, pki, monkeypatch):
    addr, _ = server
    monkeypatch.setenv("SHOAL_CERT_PATH", str(pki["dir"]))
    stub = client.connect(f"tcp://{addr}")
    try:
        assert [n.id for n in stub.ListNodes(control_pb2.ListNodesRequest()).nodes] == ["n1"]
    finally:
        stub.close()  # type: ignore[attr-defined]


@pytest.mark.timeout(30)
def test_a_certificate_of_another_ca_is_refused_as_cannot_connect(server, pki, monkeypatch):
    addr, _ = server
    monkeypatch.setenv("SHOAL_CERT_PATH", str(pki["stranger"]))
    stub = client.connect(addr)
    try:
        with pytest.raises(grpc.RpcError) as e:
            stub.ListNodes(control_pb2.ListNodesRequest())
    finally:
        stub.close()  # type: ignore[attr-defined]
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert client.rpc_error_message(e.value, addr).startswith(f"cannot connect to the shoal manager at {addr}")


@pytest.mark.timeout(30)
def test_a_wedged_manager_is_one_line_after_the_deadline(server, pki, monkeypatch):
    addr, _ = server
    monkeypatch.setenv("SHOAL_CERT_PATH", str(pki["dir"]))
    stub = client.connect(addr, timeout=0.3)
    try:
        with pytest.raises(grpc.RpcError) as e:
            stub.ListServices(control_pb2.ListServicesRequest())
    finally:
        stub.close()  # type: ignore[attr-defined]
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert client.rpc_error_message(e.value, addr) == f"the shoal manager at {addr} did not answer within {client.CALL_TIMEOUT:g}s"


# -- where the certificate files come from ------------------------------------------------------------------


def _write_set(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name in ("ca.crt", "admin.crt", "admin.key"):
        (d / name).write_text(name)
    return d


def test_shoal_cert_path_names_the_directory(tmp_path, monkeypatch):
    d = _write_set(tmp_path / "mine")
    monkeypatch.setenv("SHOAL_CERT_PATH", str(d))
    assert client.tls_files() == (d / "ca.crt", d / "admin.crt", d / "admin.key")


def test_the_home_directory_is_the_default(tmp_path):
    d = _write_set(tmp_path / "home" / ".shoal" / "certificates")
    assert client.tls_files() == (d / "ca.crt", d / "admin.crt", d / "admin.key")


def test_each_file_can_be_named_by_its_own_variable(tmp_path, monkeypatch):
    d = _write_set(tmp_path / "home" / ".shoal" / "certificates")
    own_ca = tmp_path / "own-ca.pem"
    own_ca.write_text("ca")
    monkeypatch.setenv("SHOAL_TLS_CACERT", str(own_ca))
    assert client.tls_files() == (own_ca, d / "admin.crt", d / "admin.key")


def test_flags_given_to_the_command_win_over_the_environment(tmp_path, monkeypatch):
    d = _write_set(tmp_path / "env")
    monkeypatch.setenv("SHOAL_CERT_PATH", str(d))
    flag_key = tmp_path / "flag.key"
    flag_key.write_text("k")
    with click.Context(click.Command("x"), obj={"tls": {"key": str(flag_key)}}):
        assert client.tls_files() == (d / "ca.crt", d / "admin.crt", flag_key)


def test_a_missing_file_is_one_error_naming_it_and_the_ways_to_give_it(tmp_path, monkeypatch):
    d = tmp_path / "partial"
    d.mkdir()
    (d / "admin.crt").write_text("c")
    monkeypatch.setenv("SHOAL_CERT_PATH", str(d))
    with pytest.raises(OSError, match=r"TLS file .*ca\.crt not found: a TCP host needs an admin certificate"):
        client.tls_files()


def test_connect_to_a_tcp_host_without_certificates_fails_before_any_call(tmp_path):
    with pytest.raises(OSError, match="needs an admin certificate"):
        client.connect("10.0.0.1:4242")


def test_the_stub_factory_turns_a_missing_certificate_into_the_cannot_connect_line(tmp_path):
    def factory(host: str) -> object:
        return client.connect(host)

    ctx = click.Context(click.Command("x"), obj={"connect": factory, "host": "10.0.0.1"})
    with ctx, pytest.raises(click.ClickException) as e:
        client.stub(ctx)
    assert e.value.message.startswith("cannot connect to the shoal manager at 10.0.0.1: is `shoal manager` running?")
    assert "needs an admin certificate" in e.value.message


def test_the_stub_is_made_once_per_invocation():
    made = []

    def factory(host: str) -> object:
        made.append(host)
        return object()

    with click.Context(click.Command("x"), obj={"connect": factory, "host": "h:1"}) as ctx:
        assert client.stub(ctx) is client.stub(ctx)
    assert made == ["h:1"]


# -- errors of one item among several ----------------------------------------------------------------------


class Err(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def test_an_item_error_is_its_details_but_a_connection_failure_aborts_the_command():
    assert client.item_error(Err(grpc.StatusCode.NOT_FOUND, "no such node: x")) == "no such node: x"
    for code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        with pytest.raises(grpc.RpcError):
            client.item_error(Err(code))


def test_is_not_found_only_for_not_found():
    assert client.is_not_found(Err(grpc.StatusCode.NOT_FOUND))
    assert not client.is_not_found(Err(grpc.StatusCode.INTERNAL))
    assert not client.is_not_found(ValueError("x"))


def test_a_server_error_without_details_names_its_code():
    assert client.rpc_error_message(Err(grpc.StatusCode.INTERNAL), "h") == "request failed: INTERNAL"
    assert client.rpc_error_message(Err(grpc.StatusCode.UNAVAILABLE, "leader lost, retry"), "h") == "leader lost, retry"
