#!/usr/bin/env python3
"""User-felt CLI latency: whole ``shoal`` processes, as a user at a terminal waits for them.

    .venv/bin/python bench/cli_latency.py [-n 20] [--no-crun] [--baseline OTHER/.venv]

- ``shoal run --rm busybox true`` on the node-local runtime (the busybox image from Debian's
  busybox-static, loaded with ``shoal image load``), the first run of a series with no launcher running
  ("cold") and then the median of ``-n`` runs in a row (as a user runs them);
- ``shoal svc ls`` against a running manager (embedded etcd, 3 services) over its unix socket;
- the floors under both: ``python -c pass`` in this venv, ``import click``, ``import grpc``, and
  ``shoal --version`` (the root command alone);
- ``crun run`` of /bin/true on the same busybox root (bench/runtime_start.py's bundle: overlay root
  mounted per run, same limits) as the reference of a runtime CLI written in C; docker is not run
  (no daemon on this machine kind).

``--baseline VENV`` measures another install's ``python -c pass``, ``shoal run --rm`` (its own state dir and
launcher) and ``shoal svc ls`` (the same manager) in the same run, interleaved with this one's, for a
before/after comparison that a change in the machine's load affects alike.

Before measuring, each side's source folders are byte-compiled (``compileall``): a user's shoal has its
``.pyc`` files (written at the first run, or by pip for a wheel), while a shell with
PYTHONDONTWRITEBYTECODE=1 -- as this machine's sessions have -- would otherwise compile every module of
every run (~+30% on these figures).

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


COMPILE = ("import compileall, os, shoal, shoal.manager, shoal.worker, shoal.runtime, shoal.proto\n"
           "for m in (shoal, shoal.manager, shoal.worker, shoal.runtime, shoal.proto):\n"
           "    compileall.compile_dir(os.path.dirname(m.__file__), quiet=1)")


def svc_ls_rows(tmp: Path, sides: dict[str, tuple[str, str]], n: int, res: dict[str, tuple[float, float]]) -> None:
    """``shoal svc ls`` of each side against one manager (embedded etcd, 3 services) on its unix socket."""
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
        for side, (_, shoal) in sides.items():
            res[side + "ls"] = series([shoal, "--host", f"unix://{c.sock}", "svc", "ls"], n)
            row(f"{side}shoal svc ls (unix socket, 3 services)", res[side + "ls"])
    finally:
        c.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--no-crun", action="store_true")
    ap.add_argument("--baseline", metavar="VENV", help="another install's venv, measured alike (before/after)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (containers)")
    print(f"command: {' '.join(sys.argv)}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    from tests.fixtures import busybox_image

    sides = {"": (PY, SHOAL)}
    if a.baseline:
        sides["baseline: "] = (str(Path(a.baseline) / "bin" / "python"), str(Path(a.baseline) / "bin" / "shoal"))
    res: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="shoal-bench-cli-") as d:
        tmp = Path(d)
        busybox_image.build(str(tmp / "busybox.tar"))
        for py, _ in sides.values():
            subprocess.run([py, "-c", COMPILE], check=True, env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
        print("source folders byte-compiled (as a user's shoal is after its first run)")
        envs = {}
        for i, (side, (_, shoal)) in enumerate(sides.items()):
            envs[side] = {**os.environ, "SHOAL_ROOT": str(tmp / f"local{i}")}
            envs[side].pop("SHOAL_HOST", None)
            subprocess.run([shoal, "image", "load", "-q", "-i", str(tmp / "busybox.tar")], env=envs[side], check=True)
        print(f"{'N=' + str(a.n) + ', medians':46} {'wall ms':>9} {'cpu ms':>9}")
        for side, (py, _) in sides.items():
            row(f"{side}python -c pass (this venv)", series([py, "-c", "pass"], a.n))
        row("python -c 'import click'", series([PY, "-c", "import click"], a.n))
        row("python -c 'import grpc'", series([PY, "-c", "import grpc"], a.n))
        for side, (_, shoal) in sides.items():
            row(f"{side}shoal --version", series([shoal, "--version"], a.n))
        for side, (_, shoal) in sides.items():
            run_cmd = [shoal, "run", "--rm", "busybox", "true"]
            cold = timed(run_cmd, envs[side])
            row(f"{side}shoal run --rm busybox true (first: starts the launcher)", (cold[0] * 1000, cold[1] * 1000))
        for side, (_, shoal) in sides.items():
            res[side + "run"] = series([shoal, "run", "--rm", "busybox", "true"], a.n, envs[side], warmup=1)
            row(f"{side}shoal run --rm busybox true", res[side + "run"])
        svc_ls_rows(tmp, sides, a.n, res)
        crun = None if a.no_crun else crun_reference(a.n, tmp)
        if crun is not None:
            print(f"{'crun run /bin/true (busybox overlay root)':46} {crun:9.1f} {'':>9}")
    for side, (py, _) in sides.items():
        floor = series([py, "-c", "pass"], a.n)
        print(f"\n{side}per `python -c pass` (CPU): run --rm x{res[side + 'run'][1] / floor[1]:.1f}, "
              f"svc ls x{res[side + 'ls'][1] / floor[1]:.1f} (on a quiet machine `python -c pass` takes ~10 ms)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  (targets: run --rm <= 100 ms, svc ls <= 100 ms)")
    if a.baseline:
        print(f"baseline_run_rm_true_ms_p50={res['baseline: run'][0]:.1f} baseline_svc_ls_ms_p50={res['baseline: ls'][0]:.1f}")
    run_rm, svc_ls = res["run"], res["ls"]
    print(f"run_rm_true_ms_p50={run_rm[0]:.1f} svc_ls_ms_p50={svc_ls[0]:.1f}" + (f" crun_run_true_ms_p50={crun:.1f}" if crun else ""))


if __name__ == "__main__":
    main()
