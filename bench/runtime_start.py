#!/usr/bin/env python3
"""Container start latency of shoal's runtime, with crun measured side by side in the same run.

    .venv/bin/python bench/runtime_start.py [-n 200] [--no-crun] [--image host] [--seccomp unconfined]

shoal: ``Runtime.create`` + ``start`` of ``/bin/true`` on the busybox image (built from Debian's
busybox-static by tests/fixtures/busybox_image.py and loaded into the runtime's image store; an
overlayfs of its layer plus a per-container upper dir) until the container's execve succeeded
("launch to exec"), and end to end (create, start, wait for exit, delete: "run true"). Limits as in
the findings: 256 MiB memory, 1 CPU, 256 pids; pid/mount/uts/ipc/net namespaces.

crun: the same root filesystem work, inside the timing as on shoal's side: an overlay of the same
busybox layer with a fresh upper dir, mounted before each container and unmounted and removed after it
(shoal's launcher does the same for each container), the same limits and namespaces from ``crun spec``,
timed with ``subprocess``: ``crun create`` + ``crun start`` (exec) and ``crun run`` (end to end).
``--image host`` compares on the host's root (bind-mounted once, read-only) instead. Both sides get the
same process confinement: Docker's default capabilities, and shoal's default seccomp profile (the filter
shoal applies, resolved for those capabilities, in the OCI form crun reads), or no filter on either side
with ``--seccomp unconfined`` (crun spec's own defaults have no seccomp and three capabilities).
crun 1.8 refuses this machine's hybrid cgroup layout, so it runs in a private mount namespace with
/sys/fs/cgroup/unified unmounted (findings, pitfall 15).

Prints median and p95 in ms, and ends with one ``key=value`` line. Needs root. ``--trace`` also
prints the median of every launcher and child step (runtime/launcher/trace.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fixtures (the image builder)

from shoal.runtime import ContainerConfig, Runtime, caps, logs, seccomp_default  # noqa: E402
from shoal.runtime.image import ImageStore  # noqa: E402
from shoal.runtime.launcher import trace  # noqa: E402

LIMITS = {"memory_bytes": 256 << 20, "nano_cpus": 1_000_000_000, "pids_limit": 256}
CRUN = "/usr/bin/crun"


def summary(samples: list[float]) -> tuple[float, float]:
    """Median and p95 in milliseconds."""
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return statistics.median(ms), p95


async def bench_shoal(n: int, warmup: int, state_dir: Path, image: str, seccomp: str = "") -> dict[str, list[float]]:
    rt = Runtime(state_dir, cgroup_parent=f"shoal-bench-{uuid.uuid4().hex[:6]}")
    await rt.open()
    out: dict[str, list[float]] = {"create": [], "start": [], "exec": [], "e2e": []}
    try:
        for i in range(warmup + n):
            cid = f"b{i}"
            t0 = time.perf_counter()
            await rt.create(ContainerConfig(id=cid, image=image, args=["/bin/true"], seccomp=seccomp, **LIMITS))
            t1 = time.perf_counter()
            await rt.start(cid)
            t2 = time.perf_counter()
            info = await rt.wait(cid)
            await rt.delete(cid)
            t3 = time.perf_counter()
            if info.exit_code != 0:
                raise SystemExit(f"/bin/true exited {info.exit_code}: {logs.text(info.log_path)}")
            if i >= warmup:
                out["create"].append(t1 - t0)
                out["start"].append(t2 - t1)
                out["exec"].append(t2 - t0)
                out["e2e"].append(t3 - t0)
    finally:
        for info in await rt.list():
            await rt.delete(info.id, force=True)
        await rt.close()
    return out


def oci_seccomp(doc: dict, held: tuple[str, ...]) -> dict:
    """A Docker-format profile as OCI's ``linux.seccomp`` for a process holding ``held``: the rules whose
    ``includes``/``excludes`` capabilities match (as shoal's compiler picks them), native architecture."""

    def applies(rule: dict) -> bool:
        inc, exc = (rule.get("includes") or {}).get("caps") or [], (rule.get("excludes") or {}).get("caps") or []
        return set(inc) <= set(held) and not set(exc) & set(held)

    keys = ("names", "action", "args", "errnoRet")
    rules = [{k: r[k] for k in keys if k in r} for r in doc["syscalls"] if applies(r)]
    return {"defaultAction": doc["defaultAction"], "defaultErrnoRet": doc.get("defaultErrnoRet", 1),
            "architectures": ["SCMP_ARCH_X86_64"], "syscalls": rules}  # fmt: skip


def crun_bundle(bundle: Path, rootfs: Path | None, seccomp: str = "") -> None:
    """A crun bundle; ``rootfs`` None means the host root (bind-mounted inside crun_inner).

    With an image layer, the bundle's root is an overlay of that layer and a fresh upper dir, mounted
    before each container and removed after it (see crun_inner), as shoal's launcher does for each
    container: the same root filesystem work on both sides, inside the timing on both sides.
    """
    subprocess.run([CRUN, "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["/bin/true"]
    held = list(caps.DOCKER_DEFAULT_CAPS)  # what shoal gives a container (crun spec's default has three)
    spec["process"]["capabilities"] = {"bounding": held, "effective": held, "permitted": held}
    if seccomp != "unconfined":  # the filter shoal applies to its side of the comparison
        spec["linux"]["seccomp"] = oci_seccomp(seccomp_default.profile(), caps.DOCKER_DEFAULT_CAPS)
    (bundle / "rootfs").mkdir()
    if rootfs is not None:
        (bundle / "lower").write_text(str(rootfs))
    spec["root"] = {"path": str(bundle / "rootfs"), "readonly": rootfs is None}
    spec["mounts"] = [m for m in spec["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    for dest in ("/tmp", "/run") if rootfs is None else ():
        spec["mounts"].append(
            {"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}
        )
    spec["linux"]["resources"].update(
        {"memory": {"limit": 256 << 20}, "cpu": {"quota": 100000, "period": 100000}, "pids": {"limit": 256}}
    )
    spec["linux"]["cgroupsPath"] = f"/shoal-bench-crun-{bundle.name}/c"
    (bundle / "config.json").write_text(json.dumps(spec))


class OverlayRoot:
    """The bundle's root as shoal's launcher makes a container's: overlay of the layer + a fresh upper dir."""

    def __init__(self, bundle: Path) -> None:
        lower = bundle / "lower"
        self.lower = lower.read_text() if lower.exists() else ""
        self.root = str(bundle / "rootfs")
        self.dirs = bundle / "upper"

    def mount(self) -> None:
        if self.lower:
            from shoal.runtime import linux

            (self.dirs / "upper").mkdir(parents=True)
            (self.dirs / "work").mkdir()
            opts = f"lowerdir={self.lower},upperdir={self.dirs / 'upper'},workdir={self.dirs / 'work'}"
            linux.mount("overlay", self.root, "overlay", linux.MS_NODEV, opts)

    def remove(self) -> None:
        if self.lower:
            from shoal.runtime import linux

            linux.umount2(self.root)
            shutil.rmtree(self.dirs)


def crun_inner(bundle: Path, n: int, warmup: int) -> None:
    """Runs inside ``unshare -m``: hide the v2 mount, bind the host root, time crun; prints JSON."""
    subprocess.run(["umount", "/sys/fs/cgroup/unified"], check=False)
    root = OverlayRoot(bundle)
    if not root.lower:  # the host image
        subprocess.run(["mount", "--rbind", "/", str(bundle / "rootfs")], check=True)
    base = [CRUN, "--root", str(bundle / "state")]
    quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL}
    out: dict[str, list[float]] = {"exec": [], "e2e": []}
    for i in range(warmup + n):
        cid = f"c{i}"
        t0 = time.perf_counter()
        root.mount()
        subprocess.run([*base, "create", "--bundle", str(bundle), cid], check=True, **quiet)
        subprocess.run([*base, "start", cid], check=True, **quiet)
        t1 = time.perf_counter()
        for _ in range(1000):  # wait until /bin/true has exited
            state = subprocess.run([*base, "state", cid], capture_output=True, text=True)
            if '"stopped"' in state.stdout:
                break
            time.sleep(0.001)
        subprocess.run([*base, "delete", "-f", cid], check=True, **quiet)
        root.remove()
        t2 = time.perf_counter()
        root.mount()
        subprocess.run([*base, "run", "--bundle", str(bundle), f"r{i}"], check=True, **quiet)
        root.remove()
        t3 = time.perf_counter()
        if i >= warmup:
            out["exec"].append(t1 - t0)
            out["e2e"].append(t3 - t2)
    print(json.dumps(out))


def bench_crun(
    n: int, warmup: int, work: Path, rootfs: Path | None, seccomp: str = ""
) -> tuple[dict[str, list[float]] | None, str]:
    if not os.path.exists(CRUN):
        return None, f"{CRUN} not installed"
    if shutil.which("unshare") is None:
        return None, "util-linux unshare not installed"
    bundle = work / f"crun-{uuid.uuid4().hex[:6]}"
    bundle.mkdir()
    crun_bundle(bundle, rootfs, seccomp)
    cmd = ["unshare", "-m", "--propagation", "private", sys.executable, __file__]
    cmd += ["--crun-inner", str(bundle), "-n", str(n), "--warmup", str(warmup)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    finally:
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            leftover = hierarchy / f"shoal-bench-crun-{bundle.name}"
            if leftover.is_dir():
                for child in leftover.iterdir():
                    if child.is_dir():
                        child.rmdir()
                leftover.rmdir()
    if res.returncode != 0:
        return None, f"crun failed: {res.stderr.strip()[-300:]}"
    return json.loads(res.stdout.strip().splitlines()[-1]), ""


def busybox_rootfs(work: Path) -> Path:
    """The busybox image loaded into the runtime state dir ``work/state``; returns its layer's directory."""
    from tests.fixtures import busybox_image

    busybox_image.build(str(work / "busybox.tar"))
    store = ImageStore(str(work / "state" / "images"))
    asyncio.run(Runtime(work / "state").load_image(work / "busybox.tar"))
    return Path(store.layer_path(store.get("busybox").layers[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--image", default="busybox", choices=("busybox", "host"))
    parser.add_argument("--warmup", type=int, default=None, help="default n/20")
    parser.add_argument("--no-crun", action="store_true")
    parser.add_argument(
        "--trace", action="store_true", help=f"set {trace.ENV}=1 and print the launcher's per-step medians"
    )
    parser.add_argument(
        "--seccomp", default="", choices=("", "unconfined"), help='"" (default profile) or unconfined'
    )
    parser.add_argument("--crun-inner", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    warmup = max(1, args.n // 20) if args.warmup is None else args.warmup
    if args.crun_inner:
        crun_inner(args.crun_inner, args.n, warmup)
        return
    if os.geteuid() != 0:
        raise SystemExit("needs root (namespaces, mounts, cgroups)")
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print(
        f"N={args.n} warm-up={warmup}, /bin/true on the {args.image} image, 256 MiB / 1 CPU / 256 pids, ",
        end="",
    )
    print(f"pid+mnt+uts+ipc+net ns, docker caps, seccomp {args.seccomp or 'default profile'} on both sides\n")
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        work = Path(tmp)
        rootfs = busybox_rootfs(work) if args.image == "busybox" else None
        if args.trace:
            os.environ[trace.ENV] = "1"  # inherited by the launcher bench_shoal starts
        ours = asyncio.run(bench_shoal(args.n, warmup, work / "state", args.image, args.seccomp))
        os.environ.pop(trace.ENV, None)
        if args.trace:
            with open(work / "state" / "launcher.log", encoding="utf-8", errors="replace") as f:
                steps = trace.summarize(f)
            print("launcher steps, median ms (" + trace.ENV + "=1):")
            print("\n".join("  " + line for line in steps) + "\n")
        crun, why = (None, "--no-crun given") if args.no_crun else bench_crun(args.n, warmup, work, rootfs, args.seccomp)
    rows = [("shoal create+start (to exec)", ours["exec"]), ("shoal   create only", ours["create"])]
    rows += [("shoal   start only", ours["start"]), ("shoal e2e (to exit + delete)", ours["e2e"])]
    if crun:
        rows += [
            ("crun create+start (to exec)", crun["exec"]),
            ("crun run (e2e, to exit + delete)", crun["e2e"]),
        ]
    print(f"{'variant':34} {'median ms':>10} {'p95 ms':>10}")
    for name, samples in rows:
        med, p95 = summary(samples)
        print(f"{name:34} {med:10.2f} {p95:10.2f}")
    if not crun:
        print(f"\ncrun skipped: {why}")
    figures = {
        "n": args.n,
        "image": args.image,
        "shoal_exec_p95_ms": summary(ours["exec"])[1],
        "shoal_run_true_p95_ms": summary(ours["e2e"])[1],
    }
    if crun:
        figures |= {
            "crun_exec_p50_ms": summary(crun["exec"])[0],
            "crun_run_true_p95_ms": summary(crun["e2e"])[1],
        }
    print()
    print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()))
    run_true, crun_true = summary(ours["e2e"])[0], summary(crun["e2e"])[0] if crun else None
    key = {
        "launch_to_exec_ms_p50": f"{summary(ours['exec'])[0]:.2f}",
        "run_true_ms_p50": f"{run_true:.2f}",
        "crun_run_true_ms_p50": f"{crun_true:.2f}" if crun_true else "skipped",
        "ratio_vs_crun": f"{run_true / crun_true:.2f}" if crun_true else "n/a",
    }
    print(" ".join(f"{k}={v}" for k, v in key.items()))


if __name__ == "__main__":
    main()
