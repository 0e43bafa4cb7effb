"""Running processes on a lab host: enter its network and mount namespaces, a UTS namespace with its
hostname, and its cgroup, then exec.

The lab command is a short-lived, single-threaded process, so it can do this in a ``preexec_fn``
(``setns`` + ``unshare`` through ctypes; Python 3.11 has neither) instead of chaining ``nsenter`` and
``unshare``. Processes are detached (own session, output to files under the node's data dir) and
remembered by pid and start time, so a later command never signals a recycled pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from shoal import etcdtls
from shoal.lab import cgroups, mountns
from shoal.lab.network import netns_path
from shoal.lab.state import Lab, LabError, Node, Proc
from shoal.runtime import linux

_DROP_ENV = {"SHOAL_HOST", "SHOAL_TOKEN", "SHOAL_LAB"}  # lab traffic never goes through a proxy either


def shoal_argv() -> list[str]:
    """How to run this same shoal (the script next to this interpreter, else ``python -c``)."""
    script = Path(sys.executable).parent / "shoal"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from shoal.cli.main import main; main()"]


def enter(node: Node) -> None:
    """Make the calling process a process of ``node``'s host (network, files, hostname, cgroup)."""
    fd = os.open(netns_path(node), os.O_RDONLY | os.O_CLOEXEC)  # a path of the machine's mounts: before the host's
    try:
        linux.setns(fd, linux.CLONE_NEWNET)
    finally:
        os.close(fd)
    mountns.join(node)
    linux.unshare(linux.CLONE_NEWUTS)
    socket.sethostname(node.name)
    cgroups.join_self(node.cgroups)


def check_host(node: Node) -> None:
    """LabError unless ``node``'s host namespaces (network, mounts) exist."""
    if not os.path.exists(netns_path(node)):
        raise LabError(f"{node.name} has no network namespace {netns_path(node)}; run `shoal lab down` and `lab up` again")
    if not mountns.exists(node):
        raise LabError(f"{node.name} has no mount namespace {node.mntns or '(none planned)'}; run `shoal lab down` and `lab up` again")


def exec_on(node: Node, argv: list[str]) -> NoReturn:
    """Replace this process with ``argv`` run on ``node``'s host (``lab exec``); OSError if it cannot."""
    check_host(node)
    enter(node)
    os.execvp(argv[0], argv)


def _start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks); None if gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def alive(proc: Proc | None) -> bool:
    return proc is not None and _start_time(proc.pid) == proc.start


def _private(path: Path) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)  # the first manager's banner holds the join tokens
    return fd


def spawn(node: Node, argv: list[str], name: str, secret_env: dict[str, str] | None = None) -> Proc:
    """Start ``argv`` on the node's host, detached; stdout to ``<name>.out``, stderr to ``<name>.log`` (both 0600).

    ``secret_env`` (a join token) goes into the environment, never into argv, which every user of the
    machine can read in /proc.
    """
    data = Path(node.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    check_host(node)
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV and not k.lower().endswith("_proxy")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(secret_env or {})
    with open(_private(data / f"{name}.out"), "ab") as out, open(_private(data / f"{name}.log"), "ab") as err:
        try:
            p = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=data, env=env,
                start_new_session=True, preexec_fn=lambda: enter(node),
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            raise LabError(f"cannot start {argv[0]} on {node.name}: {exc}") from None
    start = _start_time(p.pid)
    if start is None:
        raise LabError(f"{name} on {node.name} exited at once; see {data / (name + '.log')}")
    return Proc(p.pid, start)


def signal_proc(proc: Proc | None, sig: int) -> bool:
    if not alive(proc):
        return False
    assert proc is not None
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        return False
    return True


def wait_gone(procs: list[Proc | None], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in procs):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop(proc: Proc | None, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if signal_proc(proc, signal.SIGTERM) and not wait_gone([proc], grace):
        signal_proc(proc, signal.SIGKILL)
        wait_gone([proc], 2.0)


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    try:
        return [int(c) for t in os.listdir(f"/proc/{pid}/task") for c in Path(f"/proc/{pid}/task/{t}/children").read_text().split()]
    except OSError:
        return []


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def embedded_etcd(node: Node) -> Proc | None:
    """The etcd child a manager started for itself (single-manager labs)."""
    if not alive(node.daemon):
        return None
    assert node.daemon is not None
    for c in children(node.daemon.pid):
        if Path(cmdline(c)[0]).name == "etcd":
            start = _start_time(c)
            return Proc(c, start) if start is not None else None
    return None


def wait_until(cond: Callable[[], object], timeout: float, what: str, hint: str = "") -> object:
    deadline = time.monotonic() + timeout
    while True:
        res = cond()
        if res:
            return res
        if time.monotonic() > deadline:
            raise LabError(f"{what} not reached within {timeout:g}s" + (f"; {hint}" if hint else ""))
        time.sleep(0.05)


def log_tail(node: Node, name: str, lines: int = 5) -> str:
    try:
        text = (Path(node.data_dir) / f"{name}.log").read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def etcd_binary() -> str:
    path = shutil.which("etcd")
    if not path:
        raise LabError("etcd not found on PATH; run `make setup` (it installs Debian's etcd-server)")
    return path


ETCD_LAN_TIMING_MS = (25, 250)  # --heartbeat-interval, --election-timeout
"""etcd's timing for a LAN (its defaults, 100/1000 ms, allow for WAN round trips; lab hosts share one
bridge, RTT well under 1 ms): a raft leader lost with its host is noticed after 250-500 ms and replaced at
once, and the leases, which a new raft leader extends by one election timeout, outlive a dead manager by
0.75 s less than with the defaults. A member starved on a loaded machine may start an election now and
then: that costs writes a moment, not the leadership, which etcd extends and the lease keeper rides out.
Stretched by ``SHOAL_ETCD_TIME_SCALE`` on a machine many times slower (the cgroup-v2 test VM)."""


def etcd_lan_timing() -> list[str]:
    scale = max(1.0, float(os.environ.get("SHOAL_ETCD_TIME_SCALE", "1") or 1))
    heartbeat, election = (round(ms * scale) for ms in ETCD_LAN_TIMING_MS)
    return ["--heartbeat-interval", str(heartbeat), "--election-timeout", str(election)]
LAB_ELECTION_TTL_S = 1
"""The managers' election lease on the lab's etcd: etcd grants leases down to 1.5 election timeouts
(rounded up to whole seconds here), so a dead leader's lease runs out ~1 s sooner than with the 2 s
default; the leader keeps it from threads of its own (see manager.leasekeeper)."""
ELECTION_TTL_ENV = "SHOAL_LAB_ELECTION_TTL_S"
MANAGER_ELECTION_TTL_S = 2
"""A manager's own default --election-ttl, which a 1-manager lab (its embedded etcd) keeps."""


def lab_election_ttl(etcd_cluster: bool) -> int | None:
    """The lab managers' --election-ttl: LAB_ELECTION_TTL_S on the lab's etcd cluster, the managers' own
    default (None) on a lone manager's embedded etcd; ``SHOAL_LAB_ELECTION_TTL_S`` sets it for both.

    The variable is for machines many times slower than a host (tests/v2vm/guest.sh sets it: under
    software emulation a 2 s lease ran out between its grant and its first use). It can only lengthen
    the lease: whole seconds, at least the managers' own default; anything else is refused."""
    raw = os.environ.get(ELECTION_TTL_ENV, "").strip()
    if not raw:
        return LAB_ELECTION_TTL_S if etcd_cluster else None
    if not (raw.isascii() and raw.isdigit()) or int(raw) < MANAGER_ELECTION_TTL_S:
        raise LabError(f"{ELECTION_TTL_ENV}={raw!r}: whole seconds, at least {MANAGER_ELECTION_TTL_S}")
    return int(raw)


def etcd_argv(lab: Lab, node: Node) -> list[str]:
    """One member of the lab's etcd cluster, listening on the host's lab address (and its loopback).

    TLS both ways, for clients and peers, with certificates of the lab's etcd CA: a worker host on
    the same bridge cannot read or write it.
    """
    return [
        etcd_binary(), "--name", node.name, "--data-dir", str(Path(node.data_dir) / "etcd"),
        "--listen-client-urls", f"{node.etcd_client_url},https://127.0.0.1:2379",
        "--advertise-client-urls", node.etcd_client_url,
        "--listen-peer-urls", node.etcd_peer_url, "--initial-advertise-peer-urls", node.etcd_peer_url,
        "--initial-cluster", lab.initial_cluster(), "--initial-cluster-state", "new",
        "--initial-cluster-token", f"shoal-lab-{lab.name}",
        *etcd_lan_timing(),
        "--logger", "zap", "--log-level", "info", "--log-outputs", "stderr",  # info: raft elections, with times
        *etcdtls.server_flags(lab.etcd_member_tls(node)),
    ]  # fmt: skip
