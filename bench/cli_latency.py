#!/usr/bin/env python3
"""User-felt CLI latency: whole ``shoal`` processes, as a user at a terminal waits for them.

    .venv/bin/python bench/cli_latency.py [-n 20] [--no-crun]

- ``shoal run --rm busybox true`` on the node-local runtime (the busybox image from Debian's
  busybox-static, loaded with ``shoal image load``), the first run of a series with no launcher running
  ("cold") and then the median of ``-n`` runs in a row (as a user runs them);
- ``shoal svc ls`` against a running manager (embedded etcd, 3 services) over its unix socket;
- the floors under both: ``python -c pass`` in this venv, ``import click``, ``import grpc``, and
  ``shoal --version`` (the root command alone);
- ``crun run`` of /bin/true on the same busybox root (bench/runtime_start.py's bundle: overlay root
  mounted per run, same limits) as the reference of a runtime CLI written in C; docker is not run
  (no daemon on this machine kind).

Each figure is the median wall time of whole processes, with the median CPU time (user + system, from
wait4) beside it: CPU time says what the process costs, wall time what a user waits, which on a loaded
machine includes waiting for a core. Prints the load average. Needs root. Last line:
``run_rm_true_ms_p50=... svc_ls_ms_p50=...`` (targets: <= 100 ms each).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _cluster import SHOAL, BenchCluster  # noqa: E402

from shoal.proto import control_pb2 as cpb  # noqa: E402
from shoal.proto import types_pb2 as pb  # noqa: E402

PY = sys.executable


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall, cpu) seconds of one whole process; raises if it fails."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}): {err[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime


def series(cmd: list[str], n: int, env: dict[str, str] | None = None, warmup: int = 2) -> tuple[float, float]:
    """Median (wall ms, cpu ms) over ``n`` runs after ``warmup``."""
    for _ in range(warmup):
        timed(cmd, env)
    samples = [timed(cmd, env) for _ in range(n)]
    return statistics.median(s[0] for s in samples) * 1000, statistics.median(s[1] for s in samples) * 1000


def row(label: str, wall_cpu: tuple[float, float]) -> None:
    print(f"{label:46} {wall_cpu[0]:9.1f} {wall_cpu[1]:9.1f}", flush=True)


def crun_reference(n: int, work: Path) -> float | None:
    """Median ms of ``crun run`` of /bin/true on the busybox root (runtime_start's fair bundle)."""
    import runtime_start

    rootfs = runtime_start.busybox_rootfs(work)
    crun, why = runtime_start.bench_crun(n, max(1, n // 10), work, rootfs)
    if crun is None:
        print(f"crun skipped: {why}")
        return None
    return statistics.median(crun["e2e"]) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--no-crun", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (containers)")
    print(f"command: {' '.join(sys.argv)}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    from tests.fixtures import busybox_image

    with tempfile.TemporaryDirectory(prefix="shoal-bench-cli-") as d:
        tmp = Path(d)
        env = {**os.environ, "SHOAL_ROOT": str(tmp / "local")}
        env.pop("SHOAL_HOST", None)
        busybox_image.build(str(tmp / "busybox.tar"))
        subprocess.run([SHOAL, "image", "load", "-q", "-i", str(tmp / "busybox.tar")], env=env, check=True)
        print(f"{'N=' + str(a.n) + ', medians':46} {'wall ms':>9} {'cpu ms':>9}")
        row("python -c pass (this venv)", series([PY, "-c", "pass"], a.n))
        row("python -c 'import click'", series([PY, "-c", "import click"], a.n))
        row("python -c 'import grpc'", series([PY, "-c", "import grpc"], a.n))
        row("shoal --version", series([SHOAL, "--version"], a.n))
        run_cmd = [SHOAL, "run", "--rm", "busybox", "true"]
        cold = timed(run_cmd, env)
        row("shoal run --rm busybox true (first: starts the launcher)", (cold[0] * 1000, cold[1] * 1000))
        run_rm = series(run_cmd, a.n, env, warmup=1)
        row("shoal run --rm busybox true", run_rm)
        c = BenchCluster(tmp / "cluster")
        (tmp / "cluster").mkdir()
        try:
            c.start_manager("--availability", "drain")
            c.wait(lambda: c.nodes(), 60, "the manager serving", 0.2)
            for name in ("web", "api", "db"):
                spec = pb.ServiceSpec(name=name, replicas=1)
                spec.container.image = "host"
                spec.container.args.extend(["sleep", "100000"])
                c.control.CreateService(cpb.CreateServiceRequest(spec=spec), timeout=10)
            svc_ls = series([SHOAL, "--host", f"unix://{c.sock}", "svc", "ls"], a.n)
            row("shoal svc ls (unix socket, 3 services)", svc_ls)
        finally:
            c.stop()
        crun = None if a.no_crun else crun_reference(a.n, tmp)
        if crun is not None:
            print(f"{'crun run /bin/true (busybox overlay root)':46} {crun:9.1f} {'':>9}")
    floor = series([PY, "-c", "pass"], a.n)
    print(f"\nper `python -c pass` (CPU): run --rm x{run_rm[1] / floor[1]:.1f}, svc ls x{svc_ls[1] / floor[1]:.1f} "
          f"(on a quiet machine `python -c pass` takes ~10 ms)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  (targets: run --rm <= 100 ms, svc ls <= 100 ms)")
    print(f"run_rm_true_ms_p50={run_rm[0]:.1f} svc_ls_ms_p50={svc_ls[0]:.1f}" + (f" crun_run_true_ms_p50={crun:.1f}" if crun else ""))


if __name__ == "__main__":
    main()
