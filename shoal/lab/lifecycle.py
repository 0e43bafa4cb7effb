"""Bringing a lab up and tearing it down.

``up`` writes the plan first, then builds the network and each host's mount namespace (shoal.lab.mountns:
a host sees only its own files), starts the etcd members (3/5 managers), the
first manager, and everyone else in parallel with the ordinary ``shoal manager``/``shoal worker``
command lines, and waits until ``node ls`` shows every node Ready. ``down`` trusts nothing to be
running: it kills each host's cgroup subtree, any recorded pid still alive, unmounts what is left
under the lab dir (the hosts' namespace files: each namespace goes with every mount made in it), removes namespaces, links, cgroups and files, and fails loudly if any remains.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import ssl
import urllib.request
from pathlib import Path

from shoal.lab import cgroups, cluster, mountns, network, procs
from shoal.lab.state import (
    Lab,
    LabError,
    Node,
    all_labs,
    check_name,
    choose_subnet,
    labs_root,
    machine_lock,
    overlapping,
    parse_subnet,
    plan,
)

WORKER_TOKEN_RE = re.compile(r"shoal worker [^\n]*--token (SHOAL-1-[A-Za-z0-9-]+)")
MANAGER_TOKEN_RE = re.compile(r"manager[^\n]*?(?:token|--token) (SHOAL-1-[A-Za-z0-9-]+)")
WAIT_SCALE = max(1.0, float(os.environ.get("SHOAL_LAB_WAIT_SCALE", "1") or 1))
"""Stretches every wait of `lab up` (slower machines, e.g. the cgroup-v2 test VM under software emulation)."""
READY_TIMEOUT = 30.0 * WAIT_SCALE
"""How long `lab up` waits for its nodes to be Ready."""
START_TIMEOUT = 20.0 * WAIT_SCALE
"""How long `lab up` waits for the etcd cluster to be healthy and for the first manager's join tokens."""


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("shoal lab needs root (network namespaces, a bridge and cgroups)")


def manager_argv(lab: Lab, node: Node, first: bool) -> list[str]:
    argv = procs.shoal_argv() + [
        "manager", "--data-dir", node.data_dir, "--listen-addr", node.manager_addr, "--advertise-addr", node.manager_addr,
        "--socket", node.socket, "--hostname", node.name, "--direct-routing",
    ]  # fmt: skip
    if not lab.managers_run_tasks:
        argv += ["--availability", "drain"]
    if lab.etcd_cluster:
        client = lab.etcd_client_tls()
        argv += ["--etcd", lab.etcd_endpoints(), "--etcd-ca", str(client.ca), "--etcd-cert", str(client.cert), "--etcd-key", str(client.key)]
    ttl = procs.lab_election_ttl(lab.etcd_cluster)  # the lab's etcd runs with LAN timing: 1 s
    if ttl is not None:
        argv += ["--election-ttl", str(ttl)]
    if not first and lab.manager_token:
        argv += ["--join", lab.managers[0].manager_addr]  # the token goes in SHOAL_TOKEN (daemon_env)
    return argv


def worker_argv(lab: Lab, node: Node) -> list[str]:
    joins = ",".join(m.manager_addr for m in lab.managers)
    return procs.shoal_argv() + [
        "worker", "--join", joins, "--data-dir", node.data_dir, "--hostname", node.name, "--direct-routing",
    ]  # fmt: skip


def daemon_env(lab: Lab, node: Node, first: bool) -> dict[str, str]:
    """The join token a node's daemon needs, passed as SHOAL_TOKEN (not argv: /proc/PID/cmdline is world-readable)."""
    if node.role != "manager":
        return {"SHOAL_TOKEN": lab.worker_token}
    return {"SHOAL_TOKEN": lab.manager_token} if not first and lab.manager_token else {}


def start_daemon(lab: Lab, node: Node, first: bool = False) -> None:
    argv = manager_argv(lab, node, first) if node.role == "manager" else worker_argv(lab, node)
    parent = cgroups.runtime_parent(node.cgroups)
    if parent:  # cgroup v2: the node's containers go next to its processes' leaf (see lab/cgroups.py)
        argv += ["--cgroup-parent", parent]
    node.daemon = procs.spawn(node, argv, "daemon", daemon_env(lab, node, first))
    lab.save()


def start_etcd(lab: Lab, node: Node) -> None:
    node.etcd = procs.spawn(node, procs.etcd_argv(lab, node), "etcd")
    lab.save()


def _etcd_healthy(lab: Lab, node: Node) -> bool:
    client = lab.etcd_client_tls()
    ctx = ssl.create_default_context(cafile=str(client.ca))
    ctx.load_cert_chain(str(client.cert), str(client.key))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx))
    try:
        with opener.open(f"{node.etcd_client_url}/health", timeout=1) as resp:
            return b'"true"' in resp.read()
    except OSError:
        return False


def _tokens(node: Node) -> tuple[str, str] | None:
    try:
        out = (Path(node.data_dir) / "daemon.out").read_text()
    except OSError:
        return None
    w, m = WORKER_TOKEN_RE.search(out), MANAGER_TOKEN_RE.search(out)
    return (w.group(1), m.group(1) if m else "") if w else None


def _check_alive(node: Node, name: str = "daemon") -> None:
    proc = node.daemon if name == "daemon" else node.etcd
    if not procs.alive(proc):
        raise LabError(f"the {name} of {node.name} exited: {procs.log_tail(node, name) or 'no output'}")


def wait_ready(lab: Lab, names: list[str], timeout: float = READY_TIMEOUT) -> None:
    def ready() -> bool:
        for n in lab.nodes:
            if n.name in names:
                _check_alive(n)
        states = cluster.node_states(lab) or {}
        return all(states.get(n) == "Ready" for n in names)

    procs.wait_until(ready, timeout, f"{', '.join(names)} Ready", "see the node logs under " + lab.dir)


def up(name: str, managers: int, workers: int, subnet: str | None, managers_run_tasks: bool) -> Lab:
    require_root()
    check_name(name)
    procs.lab_election_ttl(True)  # a bad SHOAL_LAB_ELECTION_TTL_S is refused before anything is made
    root = labs_root()
    if (root / name / "lab.json").exists():
        raise LabError(f"lab {name!r} already exists; remove it first with `shoal lab down --name {name}`")
    with machine_lock():  # two `lab up` at once must not pick the same subnet
        lab = _plan(name, root, managers, workers, subnet, managers_run_tasks)
        try:
            for n in lab.nodes:
                cgroups.create(n.cgroups)
            network.create(lab)
        except BaseException:
            _undo(lab)
            raise
    try:
        _start(lab)
    except BaseException:
        _undo(lab)
        raise
    return lab


def _undo(lab: Lab) -> None:
    with contextlib.suppress(LabError, OSError):
        down(lab)


def _plan(name: str, root: Path, managers: int, workers: int, subnet: str | None, managers_run_tasks: bool) -> Lab:
    count = managers + workers
    taken = network.machine_networks()
    taken += [ipaddress.ip_network(other.subnet) for other in all_labs()]
    if subnet:
        net = parse_subnet(subnet, count)
        clash = overlapping(net, taken)
        if clash:
            raise LabError(f"--subnet {subnet} overlaps {clash[0]}, already used on this machine; choose another")
    else:
        net = choose_subnet(taken, count)
    lab = plan(name, managers, workers, net, root, managers_run_tasks)
    lab.cgroups = cgroups.lab_dirs(name)
    for n in lab.nodes:
        n.cgroups = cgroups.node_dirs(lab.cgroups, n.name)
    Path(lab.dir).mkdir(parents=True, exist_ok=True)
    lab.save()
    return lab


def issue_etcd_certs(lab: Lab) -> None:
    """Every etcd certificate of the lab (each member's, the managers' client one) before any member starts:
    no file of the lab's etcd CA is written while a member may be reading it."""
    for m in lab.managers:
        lab.etcd_member_tls(m)
    lab.etcd_client_tls()


def _start(lab: Lab) -> None:
    if lab.etcd_cluster:
        issue_etcd_certs(lab)
    for n in lab.nodes:  # after the etcd certificates: a manager's host binds its own back
        mountns.create(lab, n)
    if lab.etcd_cluster:
        for m in lab.managers:
            start_etcd(lab, m)

        def etcd_up() -> bool:
            for m in lab.managers:
                _check_alive(m, "etcd")
            return all(_etcd_healthy(lab, m) for m in lab.managers)

        procs.wait_until(etcd_up, START_TIMEOUT, "a healthy etcd cluster")
    first = lab.managers[0]
    start_daemon(lab, first, first=True)

    def tokens() -> tuple[str, str] | None:
        _check_alive(first)
        return _tokens(first)

    lab.worker_token, lab.manager_token = procs.wait_until(tokens, START_TIMEOUT, f"{first.name} started")  # type: ignore[misc]  # wait_until returns the probe's value: the token pair here
    lab.save()
    for n in lab.nodes[1:]:
        start_daemon(lab, n)
    wait_ready(lab, [n.name for n in lab.nodes])
    if not lab.managers_run_tasks:
        cluster.drain_managers(lab)


def kill_host(node: Node) -> None:
    """Everything on a host dies at once: its cgroup subtree, and any recorded process outside it."""
    cgroups.kill_all(node.cgroups)
    for p in (node.daemon, node.etcd):
        procs.signal_proc(p, 9)
    procs.wait_gone([node.daemon, node.etcd], 5)


def _mounts_under(path: str) -> list[str]:
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == path or point.startswith(path.rstrip("/") + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def down(lab: Lab) -> None:
    """Remove every process, mount, namespace, link, cgroup and file of the lab; raise if any is left."""
    for n in lab.nodes:
        kill_host(n)
    for point in _mounts_under(lab.dir):
        with contextlib.suppress(OSError):
            procs.linux.umount2(point, procs.linux.MNT_DETACH)
    network.destroy(lab)
    cgroups.remove(lab.cgroups)
    cgroups.remove_parent_if_empty(lab.cgroups)
    shutil.rmtree(lab.dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        (Path(lab.dir).parent / f".{lab.name}.lock").unlink()
    left = leftovers(lab)
    if left:
        raise LabError(f"lab {lab.name!r}: could not remove {', '.join(left)}")


def leftovers(lab: Lab) -> list[str]:
    left = network.leftovers(lab) + cgroups.leftovers(lab.cgroups) + _mounts_under(lab.dir)
    left += [f"pid {p.pid}" for n in lab.nodes for p in (n.daemon, n.etcd) if procs.alive(p)]
    if os.path.exists(lab.dir):
        left.append(lab.dir)
    return left
