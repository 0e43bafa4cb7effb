#!/usr/bin/env python3
"""Stack validation time: load, interpolate, validate, merge and check a 20-service stack file.

    .venv/bin/python bench/stack.py [--services 20] [--tasks 100] [--rounds 20] [--no-deploy] [--workers 2]

The file is written to a temp dir: SERVICES services sharing TASKS replicas, each with an image from
a variable with a default, a published port, environment, a health check, resources, placement,
restart/update/rollback policies, a network and a secret; plus an override file that changes every
service's replicas (so two files are merged, as ``-c a.yml -c b.yml`` does). validate_ms is the median
wall time of ``load_stack`` plus ``convert_stack`` (what ``stack deploy`` does before it sends
anything), in a process that has already imported the models. Target: 200 ms or less.

deploy_to_running_s: a lab (``shoal lab``: network-namespace hosts, 1 manager that also runs tasks and
WORKERS workers, removed at the end); the same stack, made runnable on them (the built-in ``host``
image running ``sleep``; no secrets, published ports, health checks or reservations, which this
cluster cannot give 100 tasks), is deployed with ``shoal stack deploy`` and timed until every task
is RUNNING. Target: 10 s or less. Last line: ``services=... tasks=... validate_ms=... deploy_to_running_s=...``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc  # noqa: E402

from bench._lab import SHOAL, Lab  # noqa: E402
from shoal.proto import control_pb2 as cpb  # noqa: E402
from shoal.proto import control_pb2_grpc as cgrpc  # noqa: E402
from shoal.proto import types_pb2 as pb  # noqa: E402
from shoal.stack.convert import convert_stack  # noqa: E402
from shoal.stack.loader import load_stack  # noqa: E402

SERVICE = """
  svc{i}:
    image: ${{REGISTRY:-registry.example.com}}/app{i}:${{TAG_{i}:-1.{i}.0}}
    command: ["serve", "--port", "80{i:02d}"]
    environment:
      SERVICE_NAME: svc{i}
      LOG_LEVEL: ${{LOG_LEVEL:-info}}
      PEERS: "svc{prev}:80{prev:02d}"
    ports:
      - "{port}:80{i:02d}"
    networks: [back]
    secrets: [token]
    depends_on:
      svc{prev}: {{condition: service_started}}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://localhost:80{i:02d}/health"]
      interval: 10s
      timeout: 2s
      retries: 3
      start_period: 30s
    stop_grace_period: 20s
    deploy:
      replicas: {replicas}
      labels: {{team: t{team}}}
      resources:
        limits: {{cpus: "0.5", memory: 256M}}
        reservations: {{cpus: "0.1", memory: 64M}}
      placement:
        constraints: [node.role == worker, node.labels.zone != z{team}]
        preferences: [{{spread: node.labels.zone}}]
      restart_policy: {{condition: on-failure, delay: 5s, max_attempts: 3, window: 2m}}
      update_config: {{parallelism: 2, delay: 10s, order: start-first, failure_action: rollback, monitor: 30s}}
      rollback_config: {{parallelism: 0, order: stop-first}}
"""


def write_stack(folder: Path, services: int, tasks: int) -> list[Path]:
    """The stack file and its override; replicas add up to ``tasks``."""
    per, extra = divmod(tasks, services)
    body = "".join(
        SERVICE.format(i=i, prev=i - 1 if i else 0, port=30000 + i, replicas=per + (1 if i < extra else 0), team=i % 4)
        for i in range(services)
    ).replace("    depends_on:\n      svc0: {condition: service_started}\n", "", 1)
    base = folder / "stack.yml"
    base.write_text(f'version: "3.9"\nservices:{body}\nnetworks:\n  back:\n    driver: overlay\nsecrets:\n  token:\n    file: ./token.txt\n')
    (folder / "token.txt").write_text("s3cr3t\n")
    override = folder / "override.yml"
    override.write_text("services:\n" + "".join(f"  svc{i}:\n    deploy:\n      replicas: {per + (1 if i < extra else 0)}\n" for i in range(services)))
    return [base, override]


def runnable(text: str) -> str:
    """The bench stack made runnable on a local cluster: host image, sleep, nothing it cannot give."""
    out, skip = [], 0
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if skip and indent > skip:
            continue
        skip = 0
        key = line.strip().split(":")[0]
        if key in ("ports", "secrets", "healthcheck", "reservations", "constraints", "depends_on") and indent >= 4:
            skip = indent
            continue
        if key == "image" and indent == 4:
            line = "    image: host"
        elif key == "stop_grace_period" and indent == 4:
            line = "    stop_grace_period: 1s"  # sleep as PID 1 ignores SIGTERM: do not wait 20 s at rm
        elif key == "command" and indent == 4:
            line = '    command: ["sleep", "100000"]'
        out.append(line)
    return "\n".join(out) + "\n"


def deploy_to_running(folder: Path, files: list[Path], workers: int, tasks: int) -> float:
    """Seconds from ``shoal stack deploy`` to every task RUNNING on a fresh lab (1 manager, WORKERS workers)."""
    for f in files:
        f.write_text(runnable(f.read_text()))
    lab = Lab(folder / "lab", f"bstack{os.getpid() % 10000}")
    try:
        lab.lab("up", "--managers", "1", "--workers", str(workers))
        control = cgrpc.ControlStub(grpc.insecure_channel(f"unix://{lab.socket('manager1')}"))

        def running() -> int:
            ts = control.ListTasks(cpb.ListTasksRequest(), timeout=10).tasks
            return sum(t.desired_state == pb.RUNNING and t.status.state == pb.RUNNING for t in ts)

        args = ["stack", "deploy", *(a for f in files for a in ("-c", str(f))), "--resolve-image", "never", "bench"]
        t0 = time.perf_counter()
        lab.shoal(*args)
        sent = time.perf_counter() - t0
        lab.until(lambda: running() >= tasks, 120, f"{tasks} tasks running", 0.05)
        elapsed = time.perf_counter() - t0
        print(f"deploy_command_s={sent:.2f} (the CLI: load, check, 20 CreateService calls) lab: 1 manager + {workers} workers")
        lab.shoal("stack", "rm", "bench", check=False)
        lab.until(lambda: not control.ListTasks(cpb.ListTasksRequest(), timeout=10).tasks, 60, "tasks gone", 0.2)
        return elapsed
    finally:
        subprocess.run([SHOAL, "lab", "down", "--name", lab.name], env=lab.env, capture_output=True, timeout=300)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--services", type=int, default=20)
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-deploy", action="store_true", help="only measure validation")
    args = ap.parse_args()
    print("$ " + " ".join([Path(sys.executable).name, *sys.argv]))
    with tempfile.TemporaryDirectory() as tmp:
        files = write_stack(Path(tmp), args.services, args.tasks)
        lines = sum(len(f.read_text().splitlines()) for f in files)
        times = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            stack = load_stack(files, environ={})
            plan = convert_stack(stack.compose, "bench")
            times.append((time.perf_counter() - t0) * 1000)
        tasks = sum(sp.spec.replicas for sp in plan.services.values())
        print(f"files=2 lines={lines} first_ms={times[0]:.1f} min_ms={min(times):.1f} max_ms={max(times):.1f}")
        result = f"services={len(plan.services)} tasks={tasks} validate_ms={statistics.median(times):.1f}"
        if not args.no_deploy:
            result += f" deploy_to_running_s={deploy_to_running(Path(tmp), files, args.workers, tasks):.2f}"
        print(result)


if __name__ == "__main__":
    main()
