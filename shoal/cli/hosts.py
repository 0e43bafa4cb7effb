"""Where the manager is (``--host``) and the one line a failed call shows, without click or grpcio.

Both the click commands (client.py, over grpcio) and the fast ``svc ls`` (fastsvc.py, over
unixrpc.py) turn what the user typed into an address and a failed call into a message here, so the
two paths cannot drift apart: a manager that is down reads the same whichever client met it.
Status codes are named as gRPC names them (``"UNAVAILABLE"``), the form both clients can give.
"""

from __future__ import annotations

import os

from shoal.cli.defaults import DEFAULT_HOST

DEFAULT_PORT = 4242
CALL_TIMEOUT = 10.0

# Details gRPC gives when it never reached a server (as opposed to a server saying "unavailable").
CONNECT_HINTS = (
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

__all__ = ["CALL_TIMEOUT", "DEFAULT_HOST", "DEFAULT_PORT", "BadHost", "failure_message", "grpc_target", "unix_path"]


class BadHost(ValueError):
    """A --host / SHOAL_HOST value that is not an address (the message says why)."""


def grpc_target(host: str) -> str:
    """Turn what the user typed into a gRPC target string.

    ``unix:///p``, ``unix:/p``, ``unix:p`` and ``/p`` are unix sockets; ``tcp://h:p``, ``h:p`` and a
    bare ``h`` (port 4242) are TCP.
    """
    h = host.strip()
    if not h:
        raise BadHost("empty --host")
    if h.startswith("unix://"):
        path = h[len("unix://") :]
    elif h.startswith("unix:"):
        path = h[len("unix:") :]
    elif h.startswith("/"):
        path = h
    else:
        return _tcp_target(h)
    if not path:
        raise BadHost(f"invalid --host {host!r}: missing socket path")
    return "unix://" + os.path.abspath(path)


def unix_path(host: str) -> str | None:
    """The socket path of a unix-socket ``host``, None for a TCP one; BadHost for neither."""
    target = grpc_target(host)
    return target[len("unix://") :] if target.startswith("unix://") else None


def _tcp_target(h: str) -> str:
    original = h
    if h.startswith("tcp://"):
        h = h[len("tcp://") :]
    if "://" in h:
        raise BadHost(f"invalid --host {original!r}: use unix:///path/to.sock or HOST:PORT")
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
        raise BadHost(f"invalid --host {original!r}: missing host name")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise BadHost(f"invalid --host {original!r}: bad port {port!r}")
    return f"{addr}:{port or DEFAULT_PORT}"


def failure_message(code: str | None, details: str, host: str, fallback: str = "") -> str:
    """The line a user sees for a failed call (without the "Error: " prefix).

    ``code`` is the status name (``"UNAVAILABLE"``), ``details`` the server's or the transport's
    message, ``fallback`` what to name when there is neither (the error itself).
    """
    if code == "UNAVAILABLE" and (not details or any(h in details.lower() for h in CONNECT_HINTS)):
        return cannot_connect_message(host)
    if code == "DEADLINE_EXCEEDED":
        return f"the shoal manager at {host} did not answer within {CALL_TIMEOUT:g}s"
    if details:
        return details
    return f"request failed: {code if code is not None else fallback}"


def cannot_connect_message(host: str) -> str:
    return (
        f"cannot connect to the shoal manager at {host}: is `shoal manager` running? "
        "(set --host or SHOAL_HOST)"
    )
