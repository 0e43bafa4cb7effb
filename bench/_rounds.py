"""Interleaved load rounds over several paths, and the per-round ratios that survive a noisy machine.

The networking benchmarks compare paths (direct to a task, through the routing mesh, ...) from one load
generator with the same connections and duration. On a shared machine the load changes within a run, so
every round runs each path once, back to back, in a rotated order (round r starts with path r mod n: no
path always goes first or last), and a path's figure against ``direct`` is the median of the per-round
ratios, each of which compares two measurements taken seconds apart. Every round is printed, so one can
see how much the figure moved.
"""

from __future__ import annotations

import math
import statistics

Path = tuple[str, str, int]  # name, host, port


def interleaved(netns: str, paths: list[Path], conns: int, secs: float, tool: str,
                rounds: int) -> dict[str, list[dict[str, float]]]:
    """``rounds`` rounds of every path from ``netns``; results per path, in round order."""
    from _httpload import load  # bench/ is on sys.path when a bench runs; not needed for the figures below

    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in paths}
    for r in range(rounds):
        for name, host, port in paths[r % len(paths):] + paths[:r % len(paths)]:
            runs[name].append(load(netns, host, port, conns, secs, tool))
    return runs


def _cpu(r: dict[str, float]) -> tuple[float, float]:
    """(client + server, the busier of the two) CPU time per request, us; nan without CPU figures (wrk)."""
    c, s = r.get("client_cpu_us", math.nan), r.get("server_cpu_us", math.nan)
    return c + s, max(c, s)


def summary(runs: dict[str, list[dict[str, float]]], base: str = "direct") -> dict[str, dict[str, float]]:
    """Per path: median req/s, p50, p99 and CPU per request over the rounds, and the median per-round
    ratios to ``base``: of req/s (``ratio``), and of ``base``'s CPU per request to this path's, both
    sides together (``cpu_ratio``) and the busier side (``busiest_cpu_ratio``, the side that limits
    req/s when client and server each have a core of their own)."""
    out = {}
    for name, rs in runs.items():
        pairs = list(zip(rs, runs[base], strict=True))
        ratios = [r["rps"] / b["rps"] for r, b in pairs]
        out[name] = {"rps": statistics.median(r["rps"] for r in rs),
                     "p50_ms": statistics.median(r["p50_ms"] for r in rs),
                     "p99_ms": statistics.median(r["p99_ms"] for r in rs),
                     "errors": sum(r["errors"] for r in rs), "ratio": statistics.median(ratios),
                     "min_ratio": min(ratios), "max_ratio": max(ratios),
                     "client_cpu_us": statistics.median(r.get("client_cpu_us", math.nan) for r in rs),
                     "server_cpu_us": statistics.median(r.get("server_cpu_us", math.nan) for r in rs),
                     "cpu_ratio": statistics.median(_cpu(b)[0] / _cpu(r)[0] for r, b in pairs),
                     "busiest_cpu_ratio": statistics.median(_cpu(b)[1] / _cpu(r)[1] for r, b in pairs)}
    return out


def client_line(runs: dict[str, list[dict[str, float]]], conns: int, secs: float, rounds: int) -> str:
    """What generated the load, stated once: the tool, connections, duration and rounds."""
    tool = next(iter(runs.values()))[0]["tool"]
    kind = "wrk (C, one thread)" if tool == "wrk" else "the Python asyncio client of bench/_httpload.py (no wrk here)"
    return (f"client: {kind}; {conns} keep-alive connections, {secs:g} s per path per round, {rounds} interleaved "
            f"rounds; figures are medians over the rounds, ratios the median of per-round ratios to direct")


def print_rounds(runs: dict[str, list[dict[str, float]]]) -> None:
    """Each round's req/s per path and its ratio to direct."""
    names = list(runs)
    print("round " + " ".join(f"{n:>13}" for n in names) + "   " + " ".join(f"{n + '/d':>15}" for n in names[1:]))
    for i in range(len(runs[names[0]])):
        base = runs["direct"][i]["rps"]
        cells = " ".join(f"{runs[n][i]['rps']:13.0f}" for n in names)
        ratios = " ".join(f"{runs[n][i]['rps'] / base:15.3f}" for n in names[1:])
        print(f"{i + 1:5} {cells}   {ratios}")
    print()


def print_table(results: dict[str, dict[str, float]]) -> None:
    """The median figures per path: req/s and latency, then CPU time per request (client, server)."""
    print(f"{'path':12} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'/direct':>8} {'(min-max)':>13}"
          f" {'client us':>10} {'server us':>10} {'cpu d/p':>8} {'busiest d/p':>12}")
    for name, r in results.items():
        print(f"{name:12} {r['rps']:10.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['errors']:7.0f} "
              f"{r['ratio']:8.3f} {r['min_ratio']:6.3f}-{r['max_ratio']:.3f} {r['client_cpu_us']:10.1f} "
              f"{r['server_cpu_us']:10.1f} {r['cpu_ratio']:8.3f} {r['busiest_cpu_ratio']:12.3f}")
    print("(CPU: time per request of the client process and of the server process, each including the kernel's "
          "work on the packets it sends; d/p: direct's over the path's, below 1: the path costs more)")
