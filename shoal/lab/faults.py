"""Faults on demand for one lab host: crash it, crash only its daemon, shut it down and boot it,
cut it off the bridge and heal it, crash and restart its etcd member.

Each function takes the loaded lab and the node, does the fault, and records what changed in the
lab file; the caller holds the lab's lock. ``kill`` is a power cut (the whole cgroup subtree:
daemon, etcd member, runtime launcher, containers, ``lab exec`` shells); ``kill_daemon`` is a
daemon crash (containers keep running under their launcher, as with docker's live restore).
"""

from __future__ import annotations

import signal

from shoal.lab import cgroups, lifecycle, network, procs
from shoal.lab.state import Lab, LabError, Node

STOP_GRACE = 30.0  # longer than a task's default stop grace (10 s): a node stops its containers, then removes its networking


def _running(node: Node) -> bool:
    return procs.alive(node.daemon) or procs.alive(node.etcd)


def kill(lab: Lab, node: Node) -> str:
    if not _running(node) and not cgroups.pids(node.cgroups):
        return f"{node.name} is not running"
    lifecycle.kill_host(node)
    return f"{node.name} killed (all of its processes and containers got SIGKILL)"


def kill_daemon(lab: Lab, node: Node) -> str:
    if not procs.alive(node.daemon):
        return f"the daemon of {node.name} is not running"
    embedded = procs.embedded_etcd(node)
    procs.signal_proc(node.daemon, signal.SIGKILL)
    procs.signal_proc(embedded, signal.SIGKILL)
    procs.wait_gone([node.daemon, embedded], 5)
    return f"the shoal {node.role} process of {node.name} killed; its containers keep running"


def stop(lab: Lab, node: Node) -> str:
    """A clean shutdown: the daemon and etcd get SIGTERM, then whatever is left on the host is killed."""
    if not _running(node):
        return f"{node.name} is not running"
    procs.stop(node.daemon, STOP_GRACE)
    procs.stop(node.etcd, STOP_GRACE)
    cgroups.kill_all(node.cgroups)
    return f"{node.name} stopped"


def start(lab: Lab, node: Node, wait: bool = True) -> str:
    """Boot the host again: its etcd member (3/5 managers), then its daemon; wait until Ready."""
    if procs.alive(node.daemon):
        raise LabError(f"{node.name} is already running (use `lab stop` or `lab kill` first)")
    if node.role == "manager" and lab.etcd_cluster and not procs.alive(node.etcd):
        lifecycle.start_etcd(lab, node)
    lifecycle.start_daemon(lab, node, first=node is lab.managers[0])
    if wait and not node.partitioned and any(procs.alive(m.daemon) for m in lab.managers):
        lifecycle.wait_ready(lab, [node.name])
        return f"{node.name} started and Ready"
    return f"{node.name} started"


def partition(lab: Lab, node: Node) -> str:
    network.set_partitioned(lab, node, True)
    node.partitioned = True
    lab.save()
    return f"{node.name} is cut off from the lab network ({node.veth} down)"


def heal(lab: Lab, node: Node) -> str:
    network.set_partitioned(lab, node, False)
    node.partitioned = False
    lab.save()
    return f"{node.name} is back on the lab network"


def kill_etcd(lab: Lab, node: Node) -> str:
    if node.role != "manager":
        raise LabError(f"{node.name} is a worker: etcd runs on manager hosts")
    if lab.etcd_cluster:
        if not procs.signal_proc(node.etcd, signal.SIGKILL):
            return f"the etcd member on {node.name} is not running"
        procs.wait_gone([node.etcd], 5)
        return f"the etcd member on {node.name} killed"
    embedded = procs.embedded_etcd(node)
    if not procs.signal_proc(embedded, signal.SIGKILL):
        return f"the embedded etcd of {node.name} is not running"
    procs.wait_gone([embedded], 5)
    return f"the embedded etcd of {node.name} killed"


def start_etcd(lab: Lab, node: Node) -> str:
    if node.role != "manager":
        raise LabError(f"{node.name} is a worker: etcd runs on manager hosts")
    if not lab.etcd_cluster:
        raise LabError(
            f"{node.name} runs an embedded etcd that its manager starts: use `lab stop {node.name}` and `lab start {node.name}`"
        )
    if procs.alive(node.etcd):
        raise LabError(f"the etcd member on {node.name} is already running")
    lifecycle.start_etcd(lab, node)
    return f"the etcd member on {node.name} started"


def status(lab: Lab, node: Node) -> dict[str, str]:
    """One `lab ls` row: what runs on the host, as the lab sees it (no cluster call)."""
    daemon = "running" if procs.alive(node.daemon) else ("stopped" if node.daemon else "-")
    if node.role != "manager":
        etcd = "-"
    elif lab.etcd_cluster:
        etcd = "running" if procs.alive(node.etcd) else "stopped"
    else:
        etcd = "embedded" if procs.embedded_etcd(node) else "stopped"
    return {
        "Lab": lab.name, "Node": node.name, "Role": node.role, "Address": node.addr, "Daemon": daemon,
        "Etcd": etcd, "Network": "partitioned" if node.partitioned else "connected",
        "Processes": str(len(cgroups.pids(node.cgroups))),
    }  # fmt: skip
