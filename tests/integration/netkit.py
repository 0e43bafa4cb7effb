"""Throwaway network namespaces for the networking tests, with tiny servers and clients inside them.

Every namespace a test makes is named with a random prefix and removed when the test ends, failed or
not (``Kit.close``); processes started in them are killed first. Traffic only ever goes between these
namespaces: nothing is added to the machine's own namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections import Counter

import pytest

from tests.fixtures.httpclient import client_argv

# An HTTP server answering "<name> <client address>" on every request (one connection each).
SERVER = r"""
import http.server, socketserver, sys
name, port = sys.argv[1], int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{name} {self.client_address[0]}".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    allow_reuse_address = True; daemon_threads = True
srv = S(("0.0.0.0", port), H)
print("ready", flush=True)
srv.serve_forever()
"""

# A line echo server ("<name>: <line>") for long-lived connections.
ECHO = r"""
import socketserver, sys
name, port = sys.argv[1], int(sys.argv[2])
class H(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(f"{name}: {line.decode()}".encode())
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True; daemon_threads = True
srv = S(("0.0.0.0", port), H)
print("ready", flush=True)
srv.serve_forever()
"""

needs_root = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates network namespaces"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs root tools: iproute2 (ip) is not installed"),
]


def sh(*argv: str, check: bool = True, stdin: str | None = None) -> str:
    """Run a command; its stdout (raises with stderr on failure when ``check``)."""
    res = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=60)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {res.stderr.strip()}")
    return res.stdout


class Kit:
    """Namespaces and processes of one test; ``close`` removes them all."""

    def __init__(self) -> None:
        self.prefix = f"sht{uuid.uuid4().hex[:5]}"
        self.names: list[str] = []
        self.procs: list[subprocess.Popen[str]] = []

    def ns(self, short: str) -> str:
        """A new namespace (loopback up); returns its name."""
        name = f"{self.prefix}{short}"
        sh("ip", "netns", "add", name)
        self.names.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def path(self, name: str) -> str:
        return f"/run/netns/{name}"

    def ip(self, name: str, batch: str) -> None:
        """Run ``ip -batch`` inside namespace ``name``."""
        sh("ip", "-n", name, "-batch", "-", stdin=batch)

    def run(self, name: str, *argv: str, check: bool = True) -> str:
        return sh("ip", "netns", "exec", name, *argv, check=check)

    def sysctl(self, name: str, key: str, value: str) -> None:
        self.run(name, "sysctl", "-q", "-w", f"{key}={value}")

    def serve(self, name: str, label: str, port: int = 8080, script: str = SERVER) -> None:
        """Start the HTTP (or ``ECHO``) server in ``name``, answering with ``label``; returns once it listens."""
        proc = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c", script, label, str(port)],
                                stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

    def get(self, name: str, host: str, port: int, n: int = 1) -> list[str]:
        """``n`` requests from inside ``name``; each answer is "<server label> <client address>"."""
        return json.loads(self.run(name, *client_argv(host, port, n)))

    def veth(self, a: str, a_if: str, b: str, b_if: str) -> None:
        """A veth pair between namespaces ``a`` and ``b``, both ends up."""
        sh("ip", "link", "add", f"{self.prefix}x", "netns", a, "type", "veth", "peer", "name", f"{self.prefix}y",
           "netns", b)
        self.ip(a, f"link set {self.prefix}x name {a_if}\nlink set {a_if} up\n")
        self.ip(b, f"link set {self.prefix}y name {b_if}\nlink set {b_if} up\n")

    def close(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
        for name in self.names:
            sh("ip", "netns", "del", name, check=False)
        left = [n for n in self.names if os.path.exists(self.path(n))]
        assert not left, f"namespaces left behind: {left}"


def labels(answers: list[str]) -> Counter[str]:
    """How many answers each server gave."""
    return Counter(a.split()[0] for a in answers)


def clients(answers: list[str]) -> set[str]:
    """The client addresses the servers saw."""
    return {a.split()[1] for a in answers if not a.startswith("error")}
