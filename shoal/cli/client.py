"""How the CLI reaches a manager's control API, and how its failures become one-line errors.

The CLI is a short-lived process, so it uses a plain synchronous gRPC channel; every call carries a
deadline so a wedged manager cannot hang a user's shell. Commands never build channels themselves:
they ask ``stub(ctx)``, which calls the factory kept in ``ctx.obj["connect"]`` -- the real
``connect`` in production, a fake in unit tests.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import grpc

from shoal.cli.defaults import DEFAULT_HOST  # noqa: F401  (re-exported)
from shoal.proto import control_pb2_grpc

DEFAULT_PORT = 4242
CALL_TIMEOUT = 10.0

# Details gRPC gives when it never reached a server (as opposed to a server saying "unavailable").
_CONNECT_HINTS = (
    "failed to connect",
    "connection refused",
    "no such file",
    "connect failed",
    "dns resolution failed",
    "name resolution",
    "socket closed",
    "network is unreachable",
    "permission denied",
)


class HostError(click.UsageError):
    """A --host / SHOAL_HOST value that is not an address."""


def grpc_target(host: str) -> str:
    """Turn what the user typed into a gRPC target string.

    ``unix:///p``, ``unix:/p``, ``unix:p`` and ``/p`` are unix sockets; ``tcp://h:p``, ``h:p`` and a
    bare ``h`` (port 4242) are TCP.
    """
    h = host.strip()
    if not h:
        raise HostError("empty --host")
    if h.startswith("unix://"):
        path = h[len("unix://") :]
    elif h.startswith("unix:"):
        path = h[len("unix:") :]
    elif h.startswith("/"):
        path = h
    else:
        return _tcp_target(h)
    if not path:
        raise HostError(f"invalid --host {host!r}: missing socket path")
    return "unix://" + os.path.abspath(path)


def _tcp_target(h: str) -> str:
    original = h
    if h.startswith("tcp://"):
        h = h[len("tcp://") :]
    if "://" in h:
        raise HostError(f"invalid --host {original!r}: use unix:///path/to.sock or HOST:PORT")
    h = h.rstrip("/")
    if h.startswith("["):  # [v6]:port
        addr, _, port = h.partition("]")
        addr += "]"
        port = port.lstrip(":")
    elif h.count(":") == 1:
        addr, port = h.split(":")
    elif h.count(":") == 0:
        addr, port = h, ""
    else:  # bare IPv6 address
        addr, port = f"[{h}]", ""
    if not addr:
        raise HostError(f"invalid --host {original!r}: missing host name")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise HostError(f"invalid --host {original!r}: bad port {port!r}")
    return f"{addr}:{port or DEFAULT_PORT}"


class _TimedStub:
    """Wraps a ControlStub so that every call carries a deadline."""

    def __init__(self, stub: control_pb2_grpc.ControlStub, channel: grpc.Channel, timeout: float):
        self._stub = stub
        self._channel = channel
        self._timeout = timeout

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._stub, name)
        return functools.partial(method, timeout=self._timeout)

    @property
    def channel(self) -> grpc.Channel:
        """The channel itself, for calls that must not time out (``svc logs -f``) or other services."""
        return self._channel

    def close(self) -> None:
        self._channel.close()


def connect(host: str, timeout: float = CALL_TIMEOUT) -> control_pb2_grpc.ControlStub:
    """A Control stub on ``host`` whose calls each time out after ``timeout`` seconds.

    Nothing is sent until the first call: an unreachable manager shows up as an UNAVAILABLE error
    on that call, which ``rpc_error_message`` turns into the "cannot connect" line.
    """
    target = grpc_target(host)
    if target.startswith("unix://"):
        channel = grpc.insecure_channel(target)  # the socket's file permissions guard it
    else:
        ca, cert, key = tls_files()
        creds = grpc.ssl_channel_credentials(ca.read_bytes(), key.read_bytes(), cert.read_bytes())
        channel = grpc.secure_channel(target, creds, options=[("grpc.ssl_target_name_override", "shoal-manager")])
    return _TimedStub(control_pb2_grpc.ControlStub(channel), channel, timeout)  # type: ignore[return-value]  # _TimedStub forwards every ControlStub method with a deadline


# Where the admin client certificate for TCP hosts comes from, first match wins: --tlscacert/
# --tlscert/--tlskey (env SHOAL_TLS_CACERT, SHOAL_TLS_CERT, SHOAL_TLS_KEY); else the directory
# SHOAL_CERT_PATH; else ~/.shoal/certificates; else the default manager's data dir, where
# `shoal manager` writes ca.crt, admin.crt and admin.key.
CERT_DIRS = ("~/.shoal/certificates", "/var/lib/shoal/manager/certificates")


def tls_files() -> tuple[Path, Path, Path]:
    """(CA, certificate, key) paths for a TCP connection; OSError when none are configured."""
    ctx = click.get_current_context(silent=True)
    given = dict((ctx.find_root().obj or {}).get("tls") or {}) if ctx else {}
    for name, env in (("ca", "SHOAL_TLS_CACERT"), ("cert", "SHOAL_TLS_CERT"), ("key", "SHOAL_TLS_KEY")):
        given[name] = given.get(name) or os.environ.get(env, "")
    dirs = [os.environ["SHOAL_CERT_PATH"]] if os.environ.get("SHOAL_CERT_PATH") else [os.path.expanduser(d) for d in CERT_DIRS]
    found = next((Path(d) for d in dirs if (Path(d) / "admin.crt").exists()), Path(dirs[0]))
    paths = (Path(given["ca"] or found / "ca.crt"), Path(given["cert"] or found / "admin.crt"), Path(given["key"] or found / "admin.key"))
    for p in paths:
        if not p.exists():
            raise OSError(f"TLS file {p} not found: a TCP host needs an admin certificate (--tlscacert/--tlscert/--tlskey or SHOAL_CERT_PATH)")
    return paths


def rpc_error_message(err: grpc.RpcError, host: str) -> str:
    """The one line a user sees for a failed call (without the "Error: " prefix)."""
    code = err.code() if hasattr(err, "code") else None
    details = (err.details() if hasattr(err, "details") else None) or ""
    if code == grpc.StatusCode.UNAVAILABLE and (not details or any(h in details.lower() for h in _CONNECT_HINTS)):
        return cannot_connect_message(host)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"the shoal manager at {host} did not answer within {CALL_TIMEOUT:g}s"
    if details:
        return details
    return f"request failed: {code.name if code is not None else err}"


def cannot_connect_message(host: str) -> str:
    return (
        f"cannot connect to the shoal manager at {host}: is `shoal manager` running? "
        "(set --host or SHOAL_HOST)"
    )


def stub(ctx: click.Context | None = None) -> control_pb2_grpc.ControlStub:
    """The Control stub for this invocation, connected on first use and then reused."""
    ctx = ctx or click.get_current_context()
    obj = ctx.find_root().ensure_object(dict)
    if obj.get("stub") is None:
        factory = obj.get("connect", connect)
        host = obj.get("host") or DEFAULT_HOST
        try:
            obj["stub"] = factory(host)
        except (OSError, ValueError) as exc:  # grpc refusing the target, an unreadable credential, ...
            raise click.ClickException(f"{cannot_connect_message(host)} ({exc})") from None
    return obj["stub"]


def is_not_found(err: BaseException) -> bool:
    """True for the NOT_FOUND status a lookup of an unknown service or node gets."""
    return isinstance(err, grpc.RpcError) and getattr(err, "code", lambda: None)() == grpc.StatusCode.NOT_FOUND


def item_error(err: grpc.RpcError) -> str:
    """The message for one failed item of a multi-item command (``rm a b``).

    A connection failure or timeout is re-raised: it would fail every item, so it aborts at once.
    """
    if getattr(err, "code", lambda: None)() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        raise err
    return rpc_error_message(err, "")
