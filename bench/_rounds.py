"""Interleaved load rounds over several paths, and the per-round ratios that survive a noisy machine.

The networking benchmarks compare paths (direct to a task, through the routing mesh, ...) from one load
generator with the same connections and duration. On a shared machine the load changes within a run, so
every round runs each path once, back to back, in a rotated order (round r starts with path r mod n: no
path always goes first or last), and a path's figure against ``direct`` is the median of the per-round
ratios, each of which compares two measurements taken seconds apart. Every round is printed, so one can
see how much the figure moved.
"""

from __future__ import annotations

import statistics

from _httpload import load

Path = tuple[str, str, int]  # name, host, port


def interleaved(netns: str, paths: list[Path], conns: int, secs: float, tool: str,
                rounds: int) -> dict[str, list[dict[str, float]]]:
    """``rounds`` rounds of every path from ``netns``; results per path, in round order."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in paths}
    for r in range(rounds):
        for name, host, port in paths[r % len(paths):] + paths[:r % len(paths)]:
            runs[name].append(load(netns, host, port, conns, secs, tool))
    return runs


def summary(runs: dict[str, list[dict[str, float]]], base: str = "direct") -> dict[str, dict[str, float]]:
    """Per path: median req/s, p50 and p99 over the rounds, and the median per-round ratio to ``base``."""
    out = {}
    for name, rs in runs.items():
        ratios = [r["rps"] / b["rps"] for r, b in zip(rs, runs[base], strict=True)]
        out[name] = {"rps": statistics.median(r["rps"] for r in rs),
                     "p50_ms": statistics.median(r["p50_ms"] for r in rs),
                     "p99_ms": statistics.median(r["p99_ms"] for r in rs),
                     "errors": sum(r["errors"] for r in rs), "ratio": statistics.median(ratios),
                     "min_ratio": min(ratios), "max_ratio": max(ratios)}
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
    """The median figures per path."""
    print(f"{'path':12} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'/direct':>8} {'(min-max)':>13}")
    for name, r in results.items():
        print(f"{name:12} {r['rps']:10.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['errors']:7.0f} "
              f"{r['ratio']:8.3f} {r['min_ratio']:6.3f}-{r['max_ratio']:.3f}")
