"""Bringing a lab up and tearing it down.

``up`` writes the plan first, then builds the network, starts the etcd members (3/5 managers), the
first manager, and everyone else in parallel with the ordinary ``shoal manager``/``shoal worker``
command lines, and waits until ``node ls`` shows every node Ready. ``down`` trusts nothing to be
running: it kills each host's cgroup subtree, any recorded pid still alive, unmounts what is left
under the lab dir, removes namespaces, links, cgroups and files, and fails loudly if any remains.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

from shoal.cli import lab_cgroup, lab_net, lab_proc
from shoal.cli.lab_state import (
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
READY_TIMEOUT = 30.0


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("shoal lab needs root (network namespaces, a bridge and cgroups)")


def manager_argv(lab: Lab, node: Node, first: bool) -> list[str]:
    argv = lab_proc.shoal_argv() + [
        "manager", "--data-dir", node.data_dir, "--listen-addr", node.manager_addr, "--advertise-addr", node.manager_addr,
        "--socket", node.socket, "--hostname", node.name,
    ]  # fmt: skip
    if not lab.managers_run_tasks:
        argv += ["--availability", "drain"]
    if lab.etcd_cluster:
        argv += ["--etcd", lab.etcd_endpoints()]
    if not first and lab.manager_token and _manager_takes_join():
        argv += ["--join", lab.managers[0].manager_addr, "--token", lab.manager_token]
    return argv


def _manager_takes_join() -> bool:
    """Whether ``shoal manager`` has --join (multi-manager joining, issue 5) in this build."""
    from shoal.cli.daemons import manager_cmd

    return any(p.name == "join" for p in manager_cmd.params)


def worker_argv(lab: Lab, node: Node) -> list[str]:
    joins = ",".join(m.manager_addr for m in lab.managers)
    return lab_proc.shoal_argv() + [
        "worker", "--join", joins, "--token", lab.worker_token, "--data-dir", node.data_dir, "--hostname", node.name,
    ]  # fmt: skip


def start_daemon(lab: Lab, node: Node, first: bool = False) -> None:
    argv = manager_argv(lab, node, first) if node.role == "manager" else worker_argv(lab, node)
    node.daemon = lab_proc.spawn(node, argv, "daemon")
    lab.save()


def start_etcd(lab: Lab, node: Node) -> None:
    node.etcd = lab_proc.spawn(node, lab_proc.etcd_argv(lab, node), "etcd")
    lab.save()


def _etcd_healthy(node: Node) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
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
    if not lab_proc.alive(proc):
        raise LabError(f"the {name} of {node.name} exited: {lab_proc.log_tail(node, name) or 'no output'}")


def node_states(lab: Lab) -> dict[str, str] | None:
    """Hostname -> Status ("Ready", "Down", ...) as a live manager reports it, or None if none answers."""
    from shoal.cli import client
    from shoal.proto import control_pb2, types_pb2

    for m in lab.managers:
        if not lab_proc.alive(m.daemon) or not os.path.exists(m.socket):
            continue
        stub = client.connect(f"unix://{m.socket}", timeout=2)
        try:
            nodes = stub.ListNodes(control_pb2.ListNodesRequest()).nodes
        except Exception:  # noqa: BLE001 - not serving yet, or not the one that knows
            continue
        finally:
            stub.close()  # type: ignore[attr-defined]
        return {n.description.hostname: types_pb2.NodeStatus.State.Name(n.status.state).capitalize() for n in nodes}
    return None


def wait_ready(lab: Lab, names: list[str], timeout: float = READY_TIMEOUT) -> None:
    def ready() -> bool:
        for n in lab.nodes:
            if n.name in names:
                _check_alive(n)
        states = node_states(lab) or {}
        return all(states.get(n) == "Ready" for n in names)

    lab_proc.wait_until(ready, timeout, f"{', '.join(names)} Ready", "see the node logs under " + lab.dir)


def up(name: str, managers: int, workers: int, subnet: str | None, managers_run_tasks: bool) -> Lab:
    require_root()
    check_name(name)
    root = labs_root()
    if (root / name / "lab.json").exists():
        raise LabError(f"lab {name!r} already exists; remove it first with `shoal lab down --name {name}`")
    with machine_lock():  # two `lab up` at once must not pick the same subnet
        lab = _plan(name, root, managers, workers, subnet, managers_run_tasks)
        try:
            for n in lab.nodes:
                lab_cgroup.create(n.cgroups)
            lab_net.create(lab)
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
    taken = lab_net.machine_networks()
    taken += [ipaddress.ip_network(other.subnet) for other in all_labs()]
    if subnet:
        net = parse_subnet(subnet, count)
        clash = overlapping(net, taken)
        if clash:
            raise LabError(f"--subnet {subnet} overlaps {clash[0]}, already used on this machine; choose another")
    else:
        net = choose_subnet(taken, count)
    lab = plan(name, managers, workers, net, root, managers_run_tasks)
    lab.cgroups = lab_cgroup.lab_dirs(name)
    for n in lab.nodes:
        n.cgroups = lab_cgroup.node_dirs(lab.cgroups, n.name)
    Path(lab.dir).mkdir(parents=True, exist_ok=True)
    lab.save()
    return lab


def _start(lab: Lab) -> None:
    if lab.etcd_cluster:
        for m in lab.managers:
            start_etcd(lab, m)

        def etcd_up() -> bool:
            for m in lab.managers:
                _check_alive(m, "etcd")
            return all(_etcd_healthy(m) for m in lab.managers)

        lab_proc.wait_until(etcd_up, 20, "a healthy etcd cluster")
    first = lab.managers[0]
    start_daemon(lab, first, first=True)

    def tokens() -> tuple[str, str] | None:
        _check_alive(first)
        return _tokens(first)

    lab.worker_token, lab.manager_token = lab_proc.wait_until(tokens, 20, f"{first.name} started")  # type: ignore[misc]
    lab.save()
    for n in lab.nodes[1:]:
        start_daemon(lab, n)
    wait_ready(lab, [n.name for n in lab.nodes])
    if not lab.managers_run_tasks:
        _drain_managers(lab)


def _drain_managers(lab: Lab) -> None:
    """Make sure every manager is drained, as a user would (`node update --availability drain`).

    Each manager asks for it with --availability drain; a manager that joins an existing cluster may
    register before its agent does, and a known node keeps its availability, so check and fix.
    """
    from shoal.cli import client
    from shoal.proto import control_pb2, types_pb2

    stub = client.connect(f"unix://{lab.managers[0].socket}")
    try:
        nodes = stub.ListNodes(control_pb2.ListNodesRequest()).nodes
    finally:
        stub.close()  # type: ignore[attr-defined]
    names = {m.name for m in lab.managers}
    for n in nodes:
        if n.description.hostname in names and n.spec.availability != types_pb2.NodeSpec.DRAIN:
            res = subprocess.run(
                [*lab_proc.shoal_argv(), "--host", f"unix://{lab.managers[0].socket}", "node", "update", "--availability", "drain", n.id],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            if res.returncode != 0:
                raise LabError(f"cannot drain {n.description.hostname}: {res.stderr.strip()}")


def kill_host(node: Node) -> None:
    """Everything on a host dies at once: its cgroup subtree, and any recorded process outside it."""
    lab_cgroup.kill_all(node.cgroups)
    for p in (node.daemon, node.etcd):
        lab_proc.signal_proc(p, 9)
    lab_proc.wait_gone([node.daemon, node.etcd], 5)


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
            lab_proc.linux.umount2(point, lab_proc.linux.MNT_DETACH)
    lab_net.destroy(lab)
    lab_cgroup.remove(lab.cgroups)
    lab_cgroup.remove_parent_if_empty(lab.cgroups)
    shutil.rmtree(lab.dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        (Path(lab.dir).parent / f".{lab.name}.lock").unlink()
    left = leftovers(lab)
    if left:
        raise LabError(f"lab {lab.name!r}: could not remove {', '.join(left)}")


def leftovers(lab: Lab) -> list[str]:
    left = lab_net.leftovers(lab) + lab_cgroup.leftovers(lab.cgroups) + _mounts_under(lab.dir)
    left += [f"pid {p.pid}" for n in lab.nodes for p in (n.daemon, n.etcd) if lab_proc.alive(p)]
    if os.path.exists(lab.dir):
        left.append(lab.dir)
    return left
