"""Run tests inside a cgroup-v2-only VM: Debian's own kernel under qemu (virtme-ng), this machine's root.

Why: real hosts mount only cgroup2; build machines like this one are hybrid with every controller on v1.
The VM shares the host's root read-only over 9p, whose file access under software emulation is far too
slow for Python imports, so the interpreter and the venv go on an ext4 image (cached, rebuilt only when
they change) and the checkout on a second, small one built per run. tests/v2vm/guest.sh mounts them over
their host paths inside the guest and runs one pytest process. See tests/v2vm/README.md.

usage: run.py [PYTEST-ARGS...]   (as root; exit code is pytest's; the last line is its summary line)
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import glob
import hashlib
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"
BUILD = ROOT / "build" / "v2vm"
KCACHE = BUILD / "kernel"  # not under /var, /tmp or /etc: the guest sees tmpfs there
MEMORY = os.environ.get("SHOAL_V2VM_MEMORY", "3G")
CPUS = os.environ.get("SHOAL_V2VM_CPUS", "2")
TIMEOUT = int(os.environ.get("SHOAL_V2VM_TIMEOUT", "3600"))  # a hang guard: ~6 min idle, 4-8x that on a busy host
BOOT_TIMEOUT = int(os.environ.get("SHOAL_V2VM_BOOT_TIMEOUT", "600"))  # until guest.sh's first line (~20 s idle)
BOOT_TRIES = 3  # a boot that panics or stays silent is retried; a run whose tests started is not
BOOT_FAILED = 125  # boot()'s code for "the guest never started": main() boots again
KMSG = re.compile(r"^\[\s*\d+\.\d+\] ")
PANIC = re.compile(r"PANIC: early exception|Kernel panic - not syncing")
WALKING_SKELETON = (  # they share one cluster (tests/e2e/conftest.py shared_cli_cluster): one start-up
    "test_svc_create_runs_replicas_in_isolated_containers",
    "test_a_busybox_service_runs_on_nodes_that_loaded_the_image",
    "test_a_cluster_image_is_pulled_by_the_nodes_that_run_it",
)
DEFAULT_TESTS = [
    # What make test gates on (issue 12): everything below passed inside the VM.
    "tests/integration/test_runtime.py",  # the runtime on cgroup v2: limits, OOM reported as 137, stats, ...
    "tests/integration/test_runtime_cgroup_twins.py",  # every v1 limit test's v2 twin
    "tests/integration/test_runtime_*.py",  # the rest of the runtime suite (images, mounts, exec, CLI, faults, ...)
    "tests/security/test_device_filter.py",  # the BPF device allow-list (issue 11, High 4)
    "tests/integration/test_lab_cgroup_tree.py",
    *(f"tests/e2e/test_walking_skeleton.py::{t}" for t in WALKING_SKELETON),  # manager + worker + CLI
    "tests/e2e/test_lab_v2.py",  # a lab of 1 manager + 2 workers on delegated v2 subtrees
    "tests/integration/test_dsr_mesh.py",  # direct server return's netdev rules on Debian 12's kernel (6.1)
]
# pytest's arguments reach the guest in a file on the checkout image ("@file": one a line), not on the kernel
# command line, which x86 cuts at 2048 bytes: the default list under CI=true made 2054 and every boot died.
GUEST_ARGS = ["@.v2vm/pytest-args"]  # relative to the checkout, guest.sh's working directory


def say(msg: str) -> None:
    print(f"v2vm: {msg}", flush=True)


def sh(*cmd: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, **kw)


def kernel_from_depends(text: str) -> str | None:
    """The versioned kernel package an ``apt-cache depends linux-image-amd64`` output names."""
    for line in text.splitlines():
        dep = line.strip().removeprefix("Depends: ")
        if dep.startswith("linux-image-") and dep.endswith("-amd64") and dep != "linux-image-amd64":
            return dep.removeprefix("linux-image-")
    return None


def kernel_version() -> str:
    """The kernel Debian's linux-image-amd64 points at (apt-cache names it; no network needed)."""
    ver = kernel_from_depends(sh("apt-cache", "depends", "linux-image-amd64", capture_output=True).stdout)
    if ver is None:
        raise SystemExit("v2vm: apt-cache does not name the kernel behind linux-image-amd64")
    return ver


def ensure_kernel() -> Path:
    """Download and unpack the kernel .deb once; its modules go to /lib/modules/<ver> (virtme-ng reads them there)."""
    ver = kernel_version()
    kdir = KCACHE / ver
    vmlinuz = kdir / "boot" / f"vmlinuz-{ver}"
    if not vmlinuz.exists():
        say(f"fetching Debian's kernel {ver}")
        dl = KCACHE / "deb"
        dl.mkdir(parents=True, exist_ok=True)
        sh("apt-get", "download", f"linux-image-{ver}", cwd=dl, capture_output=True)
        deb = next(dl.glob(f"linux-image-{ver}_*.deb"))
        tmp = kdir.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        sh("dpkg-deb", "-x", str(deb), str(tmp))
        sh("depmod", "-b", str(tmp), ver)  # the guest loads extra modules from here (modprobe -d)
        tmp.rename(kdir)
        deb.unlink()
    mods = Path("/lib/modules") / ver
    if not (mods / "modules.dep").exists():
        say(f"installing the guest kernel's modules in {mods}")
        tmp = mods.with_name(ver + ".shoal-tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(kdir / "lib" / "modules" / ver, tmp, symlinks=True)
        tmp.rename(mods)
        sh("depmod", ver)
    return kdir


def python_home() -> Path:
    """The interpreter install the venv was made from (pyvenv.cfg's home is its bin/)."""
    cfg = dict(
        line.split(" = ", 1) for line in (VENV / "pyvenv.cfg").read_text().splitlines() if " = " in line
    )
    return Path(cfg["home"]).resolve().parent


def make_image(path: Path, fill: callable, extra_mb: int) -> None:
    """Stage a tree with ``fill(stage_dir)`` and turn it into an ext4 image with mkfs.ext4 -d (no mount)."""
    stage = path.with_suffix(".stage")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    fill(stage)
    used_mb = int(sh("du", "-sm", str(stage), capture_output=True).stdout.split()[0])
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    sh("truncate", "-s", f"{int(used_mb * 1.3) + extra_mb}M", str(tmp))
    sh("mkfs.ext4", "-q", "-F", "-E", "root_owner=0:0", "-O", "^has_journal", "-d", str(stage), str(tmp))
    tmp.rename(path)
    shutil.rmtree(stage)


def base_key(pyhome: Path) -> str:
    """Changes when the interpreter or anything installed in the venv changes."""
    site = next((VENV / "lib").glob("python3*/site-packages"))
    parts = [str(pyhome), (VENV / "pyvenv.cfg").read_text()]
    parts += sorted(p.name for p in site.iterdir())
    parts += [p.read_text() for p in sorted(site.glob("__editable__*"))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def ensure_base(pyhome: Path) -> Path:
    """The interpreter (without its own site-packages and test suite) and the venv, as one cached image."""
    key = base_key(pyhome)
    img = BUILD / f"base-{key}.ext4"
    if img.exists():
        return img
    say(f"building the interpreter+venv image {img.name} (only when they change)")
    for old in BUILD.glob("base-*.ext4"):
        old.unlink()
    lib = next((pyhome / "lib").glob("python3.*"))

    def fill(stage: Path) -> None:
        sh("cp", "-a", str(VENV), str(stage / "venv"))
        (stage / "python").mkdir()
        for child in pyhome.iterdir():
            if child.name != "lib":
                sh("cp", "-a", str(child), str(stage / "python"))
        (stage / "python" / "lib").mkdir()
        for child in (pyhome / "lib").iterdir():
            if child != lib:
                sh("cp", "-a", str(child), str(stage / "python" / "lib"))
        dst = stage / "python" / "lib" / lib.name
        dst.mkdir()
        for child in lib.iterdir():
            if child.name not in {"site-packages", "test", "idlelib", "tkinter", "turtledemo"}:
                sh("cp", "-a", str(child), str(dst))
        (dst / "site-packages").mkdir()

    make_image(img, fill, extra_mb=64)
    return img


def build_src(pytest_args: list[str]) -> Path:
    """The checkout's files (tracked and untracked, not ignored), byte-compiled, as a small image.

    Test modules get pytest's assertion-rewritten byte code too, made here by a collection on the host
    (pytest validates it against the source's mtime and size, which the copy keeps): the guest would
    otherwise rewrite and compile every test module under emulation."""
    img = BUILD / "src.ext4"
    files = sh("git", "ls-files", "-co", "--exclude-standard", "-z", cwd=ROOT, capture_output=True).stdout
    names = [n for n in files.split("\0") if n and (ROOT / n).is_file()]
    rewritten = pytest_bytecode(pytest_args)

    def fill(stage: Path) -> None:
        for n in names + rewritten:
            (stage / n).parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):  # gone meanwhile: make test runs the host suite alongside
                shutil.copy2(ROOT / n, stage / n)
        (stage / ".venv").mkdir()
        static_layout(stage)
        (stage / GUEST_ARGS[0][1:]).write_text(args_file_text(pytest_args))
        subprocess.run([str(VENV / "bin" / "python"), "-m", "compileall", "-q", "-j0", str(stage)],
                       check=False, capture_output=True)  # fmt: skip

    make_image(img, fill, extra_mb=256)
    return img


def args_file_text(args: list[str]) -> str:
    return "".join(f"{a}\n" for a in args)  # what pytest's "@file" reads: one argument a line


def pytest_bytecode(pytest_args: list[str]) -> list[str]:
    """Collect the tests on the host with byte-code writing on; the rewritten modules' cache files."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    paths = [a for a in pytest_args if not a.startswith("-") and (ROOT / a.split("::")[0]).exists()]
    subprocess.run([str(VENV / "bin" / "python"), "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", *paths],
                   cwd=ROOT, env=env, capture_output=True, check=False, timeout=300)  # fmt: skip
    return [str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("__pycache__/*-pytest-*.pyc")]


def static_layout(stage: Path) -> None:
    """Make the staged checkout importable without the editable finder, whose import (pathlib, re,
    importlib.util) is most of a Python start-up, and the guest starts many: shoal/<sub> links to the
    folder the editable install maps it from, and guest.sh puts a plain .pth in the finder's place."""
    finder = next((VENV / "lib").glob("python3*/site-packages/__editable___*_finder.py"))
    mapping = ast.literal_eval(re.search(r"MAPPING[^=]*= (\{.*?\})\n", finder.read_text()).group(1))
    for name, path in mapping.items():
        rel = Path(path).relative_to(ROOT)
        link = stage / name.replace(".", "/")
        if link.parent.is_dir() and not link.exists() and rel.parts:
            link.symlink_to(os.path.relpath(stage / rel, link.parent))
    (stage / ".v2vm").mkdir()
    (stage / ".v2vm" / "static.pth").write_text(f"{ROOT}\n")


def read_from_image(img: Path, path: str) -> str | None:
    res = subprocess.run(["debugfs", "-R", f"cat {path}", str(img)], capture_output=True, text=True)
    return res.stdout if res.returncode == 0 and res.stdout else None


def boot(vmlinuz: Path, base: Path, src: Path, pytest_args: list[str], pyhome: Path) -> int:
    # sh reads its script as it goes, over the shared root: a copy, so editing guest.sh meanwhile is safe
    script = BUILD / "guest.sh"
    shutil.copy(ROOT / "tests/v2vm/guest.sh", script)
    guest = shlex.join(["sh", str(script), str(vmlinuz.parents[1]), str(pyhome), str(ROOT), *pytest_args])
    passed = {k: os.environ[k] for k in ("CI", "V2VM_PROBE", "V2VM_ACCT", "SHOAL_TEST_TIME_SCALE") if os.environ.get(k)}
    if passed:  # the skip gate applies inside as well
        guest = shlex.join(["env", *(f"{k}={v}" for k, v in passed.items())]) + " " + guest
    drives = [
        f"-drive file={base},if=virtio,format=raw,readonly=on",
        f"-drive file={src},if=virtio,format=raw",
        # /usr once more under a tag of its own: the guest mounts it with the page cache on (see guest.sh)
        "-fsdev local,id=shoalusr,path=/usr,security_model=none,readonly=on,multidevs=remap",
        "-device virtio-9p-pci,fsdev=shoalusr,mount_tag=shoalusr",
    ]
    vng = [str(VENV / "bin" / "vng"), "--run", str(vmlinuz), "--disable-kvm", "--force-9p", "--cpus", CPUS,
           "--memory", MEMORY, "--verbose", "--qemu-opts=" + " ".join(drives), "--append=loglevel=1 clocksource=tsc tsc=reliable nokaslr",
           "--exec", guest]  # fmt: skip
    env = {**os.environ, "PATH": f"{VENV / 'bin'}:{os.environ['PATH']}"}
    # A session of its own: vng runs qemu below a shell, and the whole group goes when we do.
    proc = subprocess.Popen(vng, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT,
                            start_new_session=True)  # fmt: skip
    assert proc.stdout is not None
    shown = ConsoleFilter()
    watch = BootWatch(time.monotonic())
    with (BUILD / "console.log").open("ab") as console:
        try:
            while (verdict := watch.verdict(time.monotonic())) is None:
                ready, _, _ = select.select([proc.stdout], [], [], 5)
                if not ready:
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    return proc.wait() if watch.started else BOOT_FAILED
                console.write(chunk)
                text = chunk.decode(errors="replace")
                watch.feed(text)
                sys.stdout.write(shown.feed(text))
                sys.stdout.flush()
            say(verdict)
            return 124 if watch.started else BOOT_FAILED
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


class BootWatch:
    """Decides from the console when waiting for the VM is pointless: a kernel panic halts the guest
    for good (an early one even ignores panic=-1), and a guest silent for BOOT_TIMEOUT never booted.
    CI once spent its whole hour on a "PANIC: early exception 0x06" right after KASLR's line."""

    def __init__(self, now: float) -> None:
        self.t0 = now
        self.started = False  # guest.sh printed its first line: the tests run, a retry would repeat them
        self.tail = ""  # the last console text, for a panic line split over two reads
        self.panic = ""

    def feed(self, text: str) -> None:
        self.tail = (self.tail + text)[-4096:]
        self.started = self.started or "v2vm-guest [" in self.tail
        if not self.panic and (m := PANIC.search(self.tail)):
            self.panic = self.tail[m.start() :].split("\n")[0].strip()

    def verdict(self, now: float) -> str | None:
        """None while waiting makes sense; else why it stopped."""
        if self.panic:
            return f"the guest kernel panicked: {self.panic}"
        if not self.started and now - self.t0 > BOOT_TIMEOUT:
            return f"the guest did not start within {BOOT_TIMEOUT}s"
        if now - self.t0 > TIMEOUT:
            return f"the VM did not finish within {TIMEOUT}s"
        return None


class ConsoleFilter:
    """Passes the guest console through live (pytest's progress dots too) minus kernel log lines."""

    def __init__(self) -> None:
        self.pending = ""  # the current, unfinished line
        self.shown = 0  # how much of it was passed through already

    def feed(self, text: str) -> str:
        out = []
        self.pending += text.replace("\r", "")
        *lines, self.pending = self.pending.split("\n")
        for i, line in enumerate(lines):
            start = self.shown if i == 0 else 0
            if not KMSG.match(line):
                out.append(line[start:] + "\n")
            self.shown = 0
        if self.pending and not self.pending.startswith("["):  # "[" may open a kernel message: wait for it
            out.append(self.pending[self.shown :])
            self.shown = len(self.pending)
        return "".join(out)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds through boot(), which stops the VM
    optional = os.environ.get("V2VM_OPTIONAL") and os.environ.get("CI") != "true"  # make test, outside CI
    if optional and os.environ.get("SHOAL_SKIP_V2VM"):
        print("v2vm: not run (SHOAL_SKIP_V2VM is set; CI=true ignores it)")
        return 0
    if os.geteuid() != 0:
        print("v2vm: needs root (installs the guest kernel's modules, runs the runtime tests as root)")
        if optional:
            print("v2vm: not run (make test outside CI, not root)")
            return 0
        return 2
    t0 = time.monotonic()
    BUILD.mkdir(parents=True, exist_ok=True)
    lock = (BUILD / "lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        say(f"another run uses {BUILD}; waiting for it")
        fcntl.flock(lock, fcntl.LOCK_EX)
    kdir = ensure_kernel()
    vmlinuz = next((kdir / "boot").glob("vmlinuz-*"))
    pyhome = python_home()
    base = ensure_base(pyhome)
    args = pytest_args(argv)
    src = build_src(args)
    t1 = time.monotonic()
    say(f"images ready in {t1 - t0:.1f}s; booting {vmlinuz.name} (TCG, {CPUS} cpus, {MEMORY})")
    (BUILD / "console.log").unlink(missing_ok=True)
    for attempt in range(1, BOOT_TRIES + 1):
        rc_vm = boot(vmlinuz, base, src, GUEST_ARGS, pyhome)  # args: in the image (see GUEST_ARGS)
        if rc_vm != BOOT_FAILED or attempt == BOOT_TRIES:
            break
        say(f"boot {attempt} of {BOOT_TRIES} failed; booting again")
    log = read_from_image(src, "/.v2vm-out/pytest.log")
    rc = read_from_image(src, "/.v2vm-out/rc")
    say(f"VM exited {rc_vm} after {time.monotonic() - t1:.1f}s; whole run {time.monotonic() - t0:.1f}s")
    if log is None or rc is None:
        say(f"no pytest result came back from the guest; see {BUILD / 'console.log'}")
        return 1
    (BUILD / "pytest.log").write_text(log)
    (BUILD / "launcher-logs.txt").write_text(read_from_image(src, "/.v2vm-out/launcher-logs.txt") or "")
    lines = log.rstrip().splitlines()
    print(lines[-1] if lines else "no pytest output", flush=True)  # pytest's summary line, last
    return int(rc.strip() or 1)


def pytest_args(argv: list[str]) -> list[str]:
    """The given pytest arguments; the default tests when they name no test path (``-k oom`` alone)."""
    if not argv:
        return ["-q", "--durations=15", *expand(DEFAULT_TESTS)]
    if any(not a.startswith("-") and (ROOT / a.split("::")[0]).exists() for a in argv):
        return argv
    return [*argv, *expand(DEFAULT_TESTS)]


def expand(patterns: list[str]) -> list[str]:
    """The patterns' files in order, each once (a glob may name a file listed before it)."""
    found = [p for pat in patterns for p in sorted(glob.glob(pat, root_dir=ROOT)) or [pat]]
    return list(dict.fromkeys(found))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
