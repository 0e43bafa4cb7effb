#!/usr/bin/env python3
"""Stack validation time: load, interpolate, validate, merge and check a 20-service stack file.

    .venv/bin/python bench/stack.py [--services 20] [--tasks 100] [--rounds 20]

The file is written to a temp dir: SERVICES services sharing TASKS replicas, each with an image from
a variable with a default, a published port, environment, a health check, resources, placement,
restart/update/rollback policies, a network and a secret; plus an override file that changes every
service's replicas (so two files are merged, as ``-c a.yml -c b.yml`` does). validate_ms is the median
wall time of ``load_stack`` plus ``convert_stack`` (what ``stack deploy`` does before it sends
anything), in a process that has already imported the models. Target: 200 ms or less.
deploy_to_running_s (a lab deploy) is not measured yet. Last line: ``services=... tasks=... validate_ms=...``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--services", type=int, default=20)
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=20)
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
        print(f"services={len(plan.services)} tasks={tasks} validate_ms={statistics.median(times):.1f}")


if __name__ == "__main__":
    main()
