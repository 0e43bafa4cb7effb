#!/usr/bin/env python3
"""Worker failure: time from kill -9 of a worker (agent, launcher and containers) until its tasks'
replacements are RUNNING on the other nodes, in a 3-worker cluster of real `shoal` processes.

    .venv/bin/python bench/node_loss.py [-n 10] [--replicas 6]

A drained manager (embedded etcd) and three workers, default settings (1 s heartbeats, 1 s
reconnect grace, 3 missed heartbeats). Each round kills the worker holding the most tasks, times
until the service has all its replicas RUNNING again with none on the dead node, then restarts the
dead worker (it rejoins and deletes its stale containers) for the next round. Needs root. Prints
each round and the median; last line ``node_loss_to_replaced_s_p50=...``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cluster import SHOAL, BenchCluster  # noqa: E402

from shoal.proto import control_pb2 as cpb  # noqa: E402
from shoal.proto import types_pb2 as pb  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--replicas", type=int, default=6)
    args = ap.parse_args()
    print(f"command: {' '.join(sys.argv)}  (shoal at {SHOAL})")
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as d:
        c = BenchCluster(Path(d))
        try:
            run(c, args.n, args.replicas)
        finally:
            try:
                c.control.RemoveService(cpb.RemoveServiceRequest(service_id="loss"), timeout=10)
                time.sleep(2)
            except Exception:
                pass
            c.stop()


def run(c: BenchCluster, rounds: int, replicas: int) -> None:
    c.start_manager("--availability", "drain")
    workers = ["w1", "w2", "w3"]
    for w in workers:
        c.start(w, *c.worker_args(w))
    c.wait(lambda: sum(st == pb.NodeStatus.READY for _id, st in c.nodes().values()) == 4, 60, "4 ready nodes", 0.2)
    spec = pb.ServiceSpec(name="loss", replicas=replicas)
    spec.container.image = "host"
    spec.container.args.extend(["sleep", "100000"])
    c.control.CreateService(cpb.CreateServiceRequest(spec=spec), timeout=10)

    def running() -> list[pb.Task]:
        ts = c.control.ListTasks(cpb.ListTasksRequest(service_ids=["loss"]), timeout=10).tasks
        return [t for t in ts if t.desired_state == pb.RUNNING and t.status.state == pb.RUNNING]

    c.wait(lambda: len(running()) == replicas, 60, "all replicas running", 0.2)
    samples = []
    for i in range(rounds):
        ids = {h: nid for h, (nid, _st) in c.nodes().items()}
        per = {w: sum(t.node_id == ids[w] for t in running()) for w in workers}
        victim = max(per, key=lambda w: per[w])
        dead = ids[victim]
        t0 = time.monotonic()
        c.kill_node(victim)
        c.wait(lambda dead=dead: (r := running()) and len(r) == replicas and all(t.node_id != dead for t in r), 60, "replacements running", 0.02)
        dt = time.monotonic() - t0
        samples.append(dt)
        print(f"round {i + 1}: killed {victim} ({per[victim]} tasks): replacements running after {dt:.2f}s")
        c.start(victim, *c.worker_args(victim))
        c.wait(lambda victim=victim: c.nodes()[victim][1] == pb.NodeStatus.READY, 60, "worker back", 0.2)
        time.sleep(1.0)
        # spread again for the next round: scale down and up so the restarted worker gets tasks
        svc = c.control.GetService(cpb.GetServiceRequest(service_id="loss"), timeout=10).service
        for n in (0, replicas):
            new = pb.ServiceSpec()
            new.CopyFrom(svc.spec)
            new.replicas = n
            svc = c.control.UpdateService(cpb.UpdateServiceRequest(service_id=svc.id, version=svc.meta.version, spec=new), timeout=10).service
            c.wait(lambda n=n: len(running()) == n and len([t for t in c.control.ListTasks(cpb.ListTasksRequest(service_ids=["loss"]), timeout=10).tasks if t.status.state <= pb.RUNNING]) == n, 60, f"{n} replicas", 0.1)
    p50 = statistics.median(samples)
    print(f"rounds={len(samples)} min={min(samples):.2f}s median={p50:.2f}s max={max(samples):.2f}s (target <= 3 s; Swarm ~20 s)")
    print(f"node_loss_to_replaced_s_p50={p50:.2f}")


if __name__ == "__main__":
    main()
