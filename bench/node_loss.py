#!/usr/bin/env python3
"""Node loss on a lab: a worker host is lost; time until its tasks' replacements run on the others.

    .venv/bin/python bench/node_loss.py [--runs 5] [--replicas 6]

A lab (``shoal lab``: network-namespace hosts on one bridge) of 1 drained manager and 3 workers with
default settings (1 s heartbeats, down after 2.5 s of silence, 1 s reconnect grace), one service of
``--replicas`` tasks (``host`` image, ``sleep``). Two ways to lose a node, ``--runs`` each:

- kill: as ``shoal lab kill WORKER`` (power cut: agent, launcher and containers get SIGKILL). The host's
  connections are closed, so the manager knows at once; the node is down after the reconnect grace.
- partition: as ``shoal lab partition WORKER`` (its link goes down: nothing is closed, nothing answers).
  The node is down once it has been silent for 2.5 heartbeat periods.

Each run takes the worker holding the most tasks, times from the fault (done in this process with the
lab engine's own ``kill``/``partition``, as the CLI does them) until every replica runs and none is on the
lost node (polling the manager's ListTasks over its unix socket every 20 ms), and says
from the manager's log when the node was marked down. The host is brought back (``lab start`` /
``lab heal``), and the service is scaled to 0 and back so the next run finds tasks on every worker.
Needs root. Prints each run and the medians; the last line is
``node_loss_kill_s_p50=... node_loss_partition_s_p50=...``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._lab import Lab  # noqa: E402
from shoal.proto import control_pb2 as cpb  # noqa: E402
from shoal.proto import control_pb2_grpc as cgrpc  # noqa: E402
from shoal.proto import types_pb2 as pb  # noqa: E402

NAME = f"bnl{os.getpid() % 10000}"
WORKERS = ("worker1", "worker2", "worker3")
DOWN_EVENTS = ("node missed its heartbeats; marking it down", "session closed without a reconnect; marking node down")


class Control:
    """ListTasks/ListNodes on the manager's unix socket, one channel for the whole bench."""

    def __init__(self, socket: str) -> None:
        self.channel = grpc.insecure_channel(f"unix://{socket}")
        self.stub = cgrpc.ControlStub(self.channel)

    def running(self, service: str) -> list[pb.Task]:
        tasks = self.stub.ListTasks(cpb.ListTasksRequest(service_ids=[service]), timeout=10).tasks
        return [t for t in tasks if t.desired_state == pb.RUNNING and t.status.state == pb.RUNNING]

    def node_ids(self) -> dict[str, str]:
        return {n.description.hostname: n.id for n in self.stub.ListNodes(cpb.ListNodesRequest(), timeout=10).nodes}


def one_run(lab: Lab, ctl: Control, path: str, replicas: int) -> tuple[str, float, str]:
    ids = ctl.node_ids()
    running = ctl.running("loss")
    victim = max(WORKERS, key=lambda w: sum(t.node_id == ids[w] for t in running))
    dead, held = ids[victim], sum(t.node_id == ids[victim] for t in running)
    t0, wall0 = lab.fault("kill" if path == "kill" else "partition", victim)

    def replaced() -> bool:
        r = ctl.running("loss")
        return len(r) == replicas and all(t.node_id != dead for t in r)

    lab.until(replaced, 60, "replacements running", every=0.02)
    dt = time.monotonic() - t0
    down = next((ts - wall0 for ts, host, rec in lab.log_events(wall0) if host == "manager1" and rec.get("event") in DOWN_EVENTS), None)
    note = f"{victim} held {held} tasks; marked down after {down:.2f} s" if down is not None else f"{victim} held {held} tasks"
    return victim, dt, note


def recover(lab: Lab, ctl: Control, path: str, victim: str, replicas: int) -> None:
    """The host back and Ready, then the service spread over every worker again."""
    lab.lab("start" if path == "kill" else "heal", victim)
    lab.until(lambda: {n["Status"] for n in lab.json("node", "ls")} == {"Ready"}, 60, "every node Ready")
    for n in (0, replicas):
        lab.shoal("svc", "scale", f"loss={n}")
    lab.until(lambda: len(ctl.running("loss")) == replicas, 60, f"{replicas} running")


def report(samples: dict[str, list[float]]) -> None:
    for path, xs in samples.items():
        print(f"{path:9}: min {min(xs):.2f} s, p50 {statistics.median(xs):.2f} s, max {max(xs):.2f} s over {len(xs)} runs (target p50 <= 3 s)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(" ".join(f"node_loss_{p}_s_p50={statistics.median(xs):.2f}" for p, xs in samples.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--replicas", type=int, default=6)
    ap.add_argument("--paths", default="kill,partition", help="which ways to lose a node, comma-separated")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (a lab of network-namespace hosts)")
    print(f"command: {' '.join(sys.argv)}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    root = Path(tempfile.mkdtemp(prefix="shoal-bench-node-loss-"))
    lab = Lab(root, NAME)
    samples: dict[str, list[float]] = {}
    try:
        lab.lab("up", "--managers", "1", "--workers", str(len(WORKERS)))
        ctl = Control(lab.socket("manager1"))
        lab.shoal("svc", "create", "--detach", "--name", "loss", "--replicas", str(a.replicas), "host", "sleep", "100000")
        lab.until(lambda: len(ctl.running("loss")) == a.replicas, 120, "every replica running")
        for path in a.paths.split(","):
            samples[path] = []
            for i in range(a.runs):
                victim, dt, note = one_run(lab, ctl, path, a.replicas)
                samples[path].append(dt)
                print(f"  {path} run {i + 1}: replacements running after {dt:.2f} s ({note})", flush=True)
                recover(lab, ctl, path, victim, a.replicas)
    finally:
        lab.run("lab", "down", "--name", NAME, check=False, timeout=300)
        shutil.rmtree(root, ignore_errors=True)
    report(samples)


if __name__ == "__main__":
    main()
