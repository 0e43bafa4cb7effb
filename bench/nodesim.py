#!/usr/bin/env python3
"""Node simulator: N lightweight fake agents in a few processes, for scale tests of the control plane.

    .venv/bin/python bench/nodesim.py --join HOST:PORT --token TOKEN --nodes 1000 --procs 4 --data-dir DIR

Each simulated node is the real worker Agent (join with the token, CSR, mutual TLS, session,
heartbeats, batched status reports) with the FakeExecutor: no containers; a task's labels decide
its behaviour (``fake.run_s``, ``fake.exit_code``, ``fake.fail_start``, ``fake.health``). Nodes are
named ``sim-<i>``; their certificates live under DIR. Prints ``ready <n>`` once every node holds a
session, then runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import subprocess
import sys
from pathlib import Path

from shoal import log, loopwatch
from shoal.worker.agent import Agent, AgentConfig
from shoal.worker.executor_fake import FakeExecutor


async def run_nodes(join: list[str], token: str, first: int, count: int, data_dir: Path, concurrency: int = 16) -> None:
    if (watch := loopwatch.from_env()) is not None:  # SHOAL_LOOP_WATCH_S: where this simulator's loop stalls
        asyncio.get_running_loop().create_task(watch.run())
    gate = asyncio.Semaphore(concurrency)  # joins (key generation, CSR, TLS handshakes) in small waves
    agents: list[Agent] = []
    tasks: list[asyncio.Task] = []

    async def start(i: int) -> None:
        async with gate:
            a = Agent(AgentConfig(join, token, data_dir / f"sim-{i}", hostname=f"sim-{i}"), FakeExecutor())
            agents.append(a)
            t = asyncio.create_task(a.run())
            tasks.append(t)
            ready = asyncio.create_task(a.ready.wait())
            await asyncio.wait({t, ready}, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            if t.done():
                t.result()

    await asyncio.gather(*(start(i) for i in range(first, first + count)))
    # the agents' long-lived objects leave the collector's view: with 250 agents in one process, full collections
    # that freed nothing took 0.5-1 s each under load (loopwatch), and the simulator, not the manager, went silent
    gc.freeze()
    print(f"ready {count}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t


def spawn(join: str, token: str, nodes: int, procs: int, data_dir: Path, log_path: Path | None = None) -> list[subprocess.Popen]:
    """Start the simulator processes (each prints ``ready <n>`` on stdout)."""
    per, extra = divmod(nodes, procs)
    out, first = [], 0
    for p in range(procs):
        n = per + (1 if p < extra else 0)
        cmd = [sys.executable, __file__, "--join", join, "--token", token, "--first", str(first), "--nodes", str(n), "--procs", "1", "--data-dir", str(data_dir)]
        err = open(log_path, "a") if log_path else None  # noqa: SIM115 - owned by the child
        out.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True))
        first += n
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--join", required=True)
    ap.add_argument("--token", default=os.environ.get("SHOAL_TOKEN", ""))
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--log-level", default="warning")
    a = ap.parse_args()
    log.setup(a.log_level)
    os.nice(10)  # simulated nodes would be other machines: leave the manager first call on this one's CPUs
    if a.procs > 1:
        children = spawn(a.join, a.token, a.nodes, a.procs, a.data_dir)
        total = sum(int(c.stdout.readline().split()[1]) for c in children)  # type: ignore[union-attr]
        print(f"ready {total}", flush=True)
        try:
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        finally:
            for c in children:
                c.terminate()
            for c in children:
                c.wait()
        return
    asyncio.run(run_nodes([x for x in a.join.split(",") if x], a.token, a.first, a.nodes, a.data_dir))


if __name__ == "__main__":
    main()
