"""The lab talking to its own cluster: which manager answers, which nodes it reports Ready.

A lab's managers serve the control API on unix sockets in the lab dir, so the lab reaches them with a
plain channel (the socket's permissions guard it, as for the CLI) and a deadline on every call. The
lab only reads nodes here; changes go through the ``shoal`` command a user would type.
"""

from __future__ import annotations

import os
import subprocess

import grpc

from shoal.lab import procs
from shoal.lab.state import Lab, LabError, load
from shoal.proto import control_pb2, control_pb2_grpc, types_pb2

CALL_TIMEOUT = 10.0 * max(1.0, float(os.environ.get("SHOAL_LAB_WAIT_SCALE", "1") or 1))  # as lifecycle.WAIT_SCALE


def host_for(name: str) -> str:
    """The control API address of a lab: the socket of its first manager whose daemon runs."""
    lab = load(name)
    for m in lab.managers:
        if procs.alive(m.daemon):
            return f"unix://{m.socket}"
    return f"unix://{lab.managers[0].socket}"


def list_nodes(socket_path: str, timeout: float = CALL_TIMEOUT) -> list[types_pb2.Node]:
    """``ListNodes`` on the manager serving ``socket_path``; grpc.RpcError when it does not answer."""
    with grpc.insecure_channel(f"unix://{socket_path}") as channel:
        stub = control_pb2_grpc.ControlStub(channel)
        return list(stub.ListNodes(control_pb2.ListNodesRequest(), timeout=timeout).nodes)


def node_states(lab: Lab) -> dict[str, str] | None:
    """Hostname -> Status ("Ready", "Down", ...) as a live manager reports it, or None if none answers.

    A manager counts as Ready only once it is also Reachable (its manager component announced itself):
    its agent may register, and so be Ready, while its manager is still joining etcd.
    """
    for m in lab.managers:
        if not procs.alive(m.daemon) or not os.path.exists(m.socket):
            continue
        try:
            nodes = list_nodes(m.socket, timeout=2)
        except Exception:  # noqa: BLE001 - not serving yet, or not the one that knows
            continue
        return {n.description.hostname: _state(n) for n in nodes}
    return None


def _state(node: types_pb2.Node) -> str:
    state = types_pb2.NodeStatus.State.Name(node.status.state).capitalize()
    ms = node.manager_status
    if state == "Ready" and node.spec.role == types_pb2.NodeSpec.MANAGER and not ms.leader and ms.reachability != "reachable":
        return "Unreachable"
    return state


def drain_managers(lab: Lab) -> None:
    """Make sure every manager is drained, as a user would (`node update --availability drain`).

    Each manager asks for it with --availability drain; a manager that joins an existing cluster may
    register before its agent does, and a known node keeps its availability, so check and fix.
    """
    host = f"unix://{lab.managers[0].socket}"
    names = {m.name for m in lab.managers}
    for n in list_nodes(lab.managers[0].socket):
        if n.description.hostname in names and n.spec.availability != types_pb2.NodeSpec.DRAIN:
            res = subprocess.run(
                [*procs.shoal_argv(), "--host", host, "node", "update", "--availability", "drain", n.id],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            if res.returncode != 0:
                raise LabError(f"cannot drain {n.description.hostname}: {res.stderr.strip()}")
