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

from shoal.cli import hosts
from shoal.cli.defaults import DEFAULT_HOST  # noqa: F401  (re-exported)
from shoal.cli.hosts import CALL_TIMEOUT, DEFAULT_PORT, cannot_connect_message  # noqa: F401  (re-exported)
from shoal.proto import control_pb2_grpc


class HostError(click.UsageError):
    """A --host / SHOAL_HOST value that is not an address."""


def grpc_target(host: str) -> str:
    """Turn what the user typed into a gRPC target string (see hosts.grpc_target); HostError if it is none."""
    try:
        return hosts.grpc_target(host)
    except hosts.BadHost as exc:
        raise HostError(str(exc)) from None


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
    """The one line a user sees for a failed call (without the "Error: " prefix): see hosts.failure_message."""
    code = err.code() if hasattr(err, "code") else None
    details = (err.details() if hasattr(err, "details") else None) or ""
    return hosts.failure_message(code.name if code is not None else None, details, host, str(err))


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
