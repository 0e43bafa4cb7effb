"""bench/_httpload.py: the keep-alive server and the Python load generator of the networking benchmarks.

On loopback only. The client's figures (req/s, percentiles, CPU time per request of each side) are
what bench/mesh.py compares paths with; a server that stopped answering ``GET /cpu`` would turn the
server's figure into nan without failing the bench, so it is checked here.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from bench import _httpload
from tests.integration.netkit import Kit

PYTHON = os.path.realpath(sys.executable)


@pytest.fixture
def server() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([PYTHON, "-c", _httpload.SERVER, "hello", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield port
    finally:
        proc.kill()
        proc.wait()


def get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < int(data.split(b"Content-Length: ")[1].split(b"\r\n")[0]):
            data += c.recv(4096)
        return data.split(b"\r\n\r\n", 1)[1]


def test_the_server_answers_its_body_and_its_own_cpu_time(server: int):
    assert get(server, "/") == b"hello"
    first = float(get(server, "/cpu"))
    assert first > 0 and float(get(server, "/cpu")) >= first


def test_the_client_reports_requests_latency_and_cpu_per_request_of_both_sides(server: int):
    out = subprocess.run([PYTHON, "-c", _httpload.CLIENT, "127.0.0.1", str(server), "4", "0.5"],
                         capture_output=True, text=True, check=True, timeout=60)
    stats = json.loads(out.stdout)
    assert stats["requests"] > 100 and stats["errors"] == 0
    assert 0 < stats["p50_ms"] <= stats["p99_ms"]
    for side in ("client_cpu_us", "server_cpu_us"):
        assert math.isfinite(stats[side]) and 1 < stats[side] < 10_000, side


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates a network namespace")
def test_wrk_reports_the_cpu_per_request_of_both_sides_too():
    """bench/mesh.py runs wrk when it is installed (`make setup` installs it): its CPU columns must be figures."""
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not installed: `make setup` installs Debian's wrk for the networking benchmarks")
    kit = Kit()
    try:
        ns = kit.ns("w")
        kit.serve(ns, "hello", port=8080, script=_httpload.SERVER)
        assert math.isfinite(_httpload.server_cpu_s(ns, "127.0.0.1", 8080))
        stats = _httpload.run_wrk(ns, "127.0.0.1", 8080, 4, 1)
        assert stats["requests"] > 100 and stats["errors"] == 0
        assert 0 < stats["p50_ms"] <= stats["p99_ms"]
        for side in ("client_cpu_us", "server_cpu_us"):
            assert math.isfinite(stats[side]) and 0.5 < stats[side] < 10_000, side
    finally:
        kit.close()
