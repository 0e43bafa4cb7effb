"""A small keep-alive HTTP server and a bounded load generator, for the networking benchmarks.

Both run as ``python -c`` scripts inside network namespaces (``ip netns exec``). The server answers
every request with a fixed body on HTTP/1.1 keep-alive connections. The client opens ``c``
connections and sends requests back to back on each for ``d`` seconds, then prints one JSON line:
requests, errors, seconds and the latency percentiles in ms, and the CPU time per request of the client
process and of the server process (the server answers ``GET /cpu`` with its own CPU time; the kernel's
work for a packet is mostly done by the process that sends it, so each side's figure includes the
network path its packets take: a measure that a busy machine disturbs far less than req/s). With ``wrk``
installed (Debian ``wrk``), ``run_wrk`` is used instead and reports the same fields: the client's CPU is
wrk's own (from the rusage of the waited-for child), the server's is read with ``GET /cpu`` before and after.
"""

from __future__ import annotations

import json
import re
import resource
import shutil
import subprocess
import sys

SERVER = r"""
import asyncio, sys, time
body = sys.argv[1].encode()
reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
def cpu():
    used = b"%.6f" % time.process_time()
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(used), used)
async def handle(r, w):
    try:
        while True:
            head = await r.readuntil(b"\r\n\r\n")
            w.write(cpu() if head.startswith(b"GET /cpu") else reply)
            await w.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    w.close()
async def main():
    srv = await asyncio.start_server(handle, "0.0.0.0", int(sys.argv[2]), backlog=1024)
    print("ready", flush=True)
    await srv.serve_forever()
asyncio.run(main())
"""

CLIENT = r"""
import asyncio, json, sys, time
host, port, conns, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
req = f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
lat, errors = [], 0
async def one(deadline):
    global errors
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 3)
    except (OSError, asyncio.TimeoutError):
        errors += 1
        return
    try:
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            w.write(req)
            head = await r.readuntil(b"\r\n\r\n")
            size = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            await r.readexactly(size)
            lat.append(time.perf_counter() - t)
    except (OSError, asyncio.IncompleteReadError):
        errors += 1
    w.close()
async def server_cpu():
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 3)
        w.write(f"GET /cpu HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        head = await r.readuntil(b"\r\n\r\n")
        used = float(await r.readexactly(int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])))
        w.close()
        return used
    except (OSError, ValueError, asyncio.TimeoutError, asyncio.IncompleteReadError):
        return float("nan")
async def main():
    served0 = await server_cpu()
    start, own0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(start + secs) for _ in range(conns)))
    took, own = time.perf_counter() - start, time.process_time() - own0
    served = await server_cpu() - served0
    lat.sort()
    pct = lambda p: 1000 * lat[min(len(lat) - 1, int(p * len(lat)))] if lat else 0.0
    per = lambda s: 1e6 * s / max(1, len(lat))
    print(json.dumps({"requests": len(lat), "errors": errors, "seconds": took,
                      "p50_ms": pct(0.5), "p99_ms": pct(0.99),
                      "client_cpu_us": per(own), "server_cpu_us": per(served)}))
asyncio.run(main())
"""


def run_python(netns: str, host: str, port: int, conns: int, secs: float) -> dict[str, float]:
    """Load from inside ``netns`` with the Python client."""
    out = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", CLIENT, host, str(port), str(conns),
                          str(secs)], capture_output=True, text=True, check=True, timeout=secs + 60)
    return json.loads(out.stdout)


SERVER_CPU = r"""
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as c:
    c.sendall(f"GET /cpu HTTP/1.1\r\nHost: {sys.argv[1]}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < int(data.split(b"Content-Length: ")[1].split(b"\r\n")[0]):
        chunk = c.recv(4096)
        if not chunk:
            break
        data += chunk
print(data.split(b"\r\n\r\n", 1)[1].decode())
"""


def server_cpu_s(netns: str, host: str, port: int) -> float:
    """The server's own CPU seconds so far (its ``GET /cpu``), asked from inside ``netns``; nan if it cannot say."""
    out = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", SERVER_CPU, host, str(port)],
                         capture_output=True, text=True, timeout=30)
    try:
        return float(out.stdout)
    except ValueError:
        return float("nan")


def _children_cpu_s() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(netns: str, host: str, port: int, conns: int, secs: float) -> dict[str, float]:
    """Load from inside ``netns`` with wrk (one thread, ``conns`` connections, latency distribution)."""
    served0 = server_cpu_s(netns, host, port)
    own0 = _children_cpu_s()
    out = subprocess.run(["ip", "netns", "exec", netns, "wrk", "-t1", f"-c{conns}", f"-d{int(secs)}s", "--latency",
                          f"http://{host}:{port}/"], capture_output=True, text=True, check=True,
                         timeout=secs + 60).stdout
    own = _children_cpu_s() - own0  # `ip netns exec` execs wrk: the waited-for child is wrk itself
    served = server_cpu_s(netns, host, port) - served0
    stats = parse_wrk(out)
    per = max(1, stats["requests"]) / 1e6
    return {**stats, "seconds": secs, "client_cpu_us": own / per, "server_cpu_us": served / per}


def parse_wrk(out: str) -> dict[str, float]:
    """Requests, errors and the 50th/99th latency percentiles from wrk's ``--latency`` output.

    The percentiles are read from the "Latency Distribution" lines only: the thread-stats lines end in
    a "+/- Stdev" percentage (``75.50%``) that a looser pattern mistakes for the 50th percentile."""
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return {"requests": requests, "errors": errors,
            "p50_ms": _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
            "p99_ms": _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))}  # type: ignore[union-attr]


def load(netns: str, host: str, port: int, conns: int, secs: float, tool: str = "auto") -> dict[str, float]:
    """Requests/s and latency from ``netns`` to ``host:port``; ``tool`` is wrk, python, or auto."""
    use_wrk = tool == "wrk" or (tool == "auto" and shutil.which("wrk") is not None)
    stats = (run_wrk if use_wrk else run_python)(netns, host, port, conns, secs)
    stats["rps"] = stats["requests"] / stats["seconds"]
    stats["tool"] = "wrk" if use_wrk else "python"  # type: ignore[assignment]
    return stats
