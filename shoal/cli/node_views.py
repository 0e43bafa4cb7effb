"""``node ls --filter`` and ``node inspect --pretty``, as pure functions of Node protobufs (docker's rules and layout)."""

from __future__ import annotations

from collections.abc import Mapping

from shoal import units
from shoal.cli.docker_views import iso, node_addr
from shoal.cli.listing import label_matches
from shoal.proto import types_pb2 as pb

NODE_FILTERS = ("id", "name", "role", "membership", "label", "node.label")


def node_matches(f: Mapping[str, list[str]], node: pb.Node) -> bool:
    """docker's node filters: id and name by prefix, role, membership (every node here is ``accepted``),
    ``label`` on the engine labels and ``node.label`` on the node's own labels (KEY or KEY=VALUE, all must match)."""
    if "id" in f and not any(node.id.startswith(v) for v in f["id"]):
        return False
    if "name" in f and not any(node.description.hostname.startswith(v) for v in f["name"]):
        return False
    if "role" in f and pb.NodeSpec.Role.Name(node.spec.role).lower() not in [v.lower() for v in f["role"]]:
        return False
    if "membership" in f and "accepted" not in [v.lower() for v in f["membership"]]:
        return False
    if "label" in f and not all(label_matches(node.description.engine_labels, w) for w in f["label"]):
        return False
    return "node.label" not in f or all(label_matches(node.spec.labels, w) for w in f["node.label"])


def check_filter_values(f: Mapping[str, list[str]]) -> str:
    """The first filter value that can never mean anything ("" when all are fine)."""
    for v in f.get("role", []):
        if v.lower() not in ("manager", "worker"):
            return f"invalid role filter {v!r}: expected manager or worker"
    for v in f.get("membership", []):
        if v.lower() not in ("accepted", "pending"):
            return f"invalid membership filter {v!r}: expected accepted or pending"
    return ""


def pretty_node(node: pb.Node) -> str:
    """``node inspect --pretty`` (docker's layout)."""
    d = node.description
    lines = [f"ID:\t\t\t{node.id}"]
    if node.spec.labels:
        lines.append("Labels:")
        lines += [f" - {k}={v}" for k, v in sorted(node.spec.labels.items())]
    lines += [
        f"Hostname:\t\t{d.hostname}",
        f"Joined at:\t\t{iso(node.meta.created_at_ns)}",
        "Status:",
        f" State:\t\t\t{pb.NodeStatus.State.Name(node.status.state).capitalize()}",
        f" Availability:\t\t{pb.NodeSpec.Availability.Name(node.spec.availability).capitalize()}",
        f" Address:\t\t{node_addr(node)}",
    ]
    if node.HasField("manager_status") or node.spec.role == pb.NodeSpec.MANAGER:
        ms = node.manager_status
        lines += ["Manager Status:", f" Address:\t\t{ms.addr}", f" Raft Status:\t\t{(ms.reachability or 'reachable').capitalize()}",
                  f" Leader:\t\t{'Yes' if ms.leader else 'No'}"]  # fmt: skip
    lines += ["Platform:", f" Operating System:\t{d.platform_os}", f" Architecture:\t\t{d.platform_arch}", "Resources:",
              f" CPUs:\t\t\t{d.nano_cpus // 10**9 if d.nano_cpus % 10**9 == 0 else d.nano_cpus / 1e9:g}",
              f" Memory:\t\t{units.format_bytes(d.memory_bytes)}"]  # fmt: skip
    version = d.engine_labels.get("shoal.version", "")
    if version:
        lines.append(f"Engine Version:\t\t{version}")
    others = {k: v for k, v in d.engine_labels.items() if k != "shoal.version"}
    if others:
        lines.append("Engine Labels:")
        lines += [f" - {k}={v}" for k, v in sorted(others.items())]
    return "\n".join(lines)
