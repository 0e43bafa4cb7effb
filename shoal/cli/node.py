"""``shoal node``: ls and inspect, with docker's ``node ls`` columns.

STATUS is the node's liveness (Ready/Down/Unknown), AVAILABILITY its scheduling setting
(Active/Pause/Drain), MANAGER STATUS Leader/Reachable/Unreachable for managers and empty for workers.
"""

from __future__ import annotations

from collections.abc import Mapping

import click
import grpc

from shoal import ids
from shoal.cli import client
from shoal.cli.aliases import AliasGroup
from shoal.cli.output import emit_list, format_option, message_dict, print_json, quiet_option
from shoal.proto import control_pb2, types_pb2

NODE_HEADERS = ("ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ENGINE VERSION")


def manager_status(node: types_pb2.Node) -> str:
    """"Leader", "Reachable", "Unreachable", or "" for a worker."""
    if node.spec.role != types_pb2.NodeSpec.MANAGER and not node.HasField("manager_status"):
        return ""
    ms = node.manager_status
    if ms.leader:
        return "Leader"
    return (ms.reachability or "reachable").capitalize()


def node_record(node: types_pb2.Node) -> dict[str, str]:
    """One ``node ls`` row as a JSON object (full id)."""
    return {
        "ID": node.id,
        "Hostname": node.description.hostname,
        "Status": types_pb2.NodeStatus.State.Name(node.status.state).capitalize(),
        "Availability": types_pb2.NodeSpec.Availability.Name(node.spec.availability).capitalize(),
        "ManagerStatus": manager_status(node),
        "EngineVersion": node.description.engine_labels.get("shoal.version", ""),
    }


def node_row(rec: Mapping[str, str]) -> list[str]:
    return [
        ids.short(rec["ID"]),
        rec["Hostname"],
        rec["Status"],
        rec["Availability"],
        rec["ManagerStatus"],
        rec["EngineVersion"],
    ]


@click.group("node", cls=AliasGroup, aliases={"list": "ls"})
def node_group() -> None:
    """Manage cluster nodes"""


@node_group.command("ls")
@format_option
@quiet_option
def list_nodes(fmt: str, quiet: bool) -> None:
    """List nodes in the cluster"""
    nodes = client.stub().ListNodes(control_pb2.ListNodesRequest()).nodes
    records = [node_record(n) for n in sorted(nodes, key=lambda n: (n.description.hostname, n.id))]
    emit_list(fmt, quiet, NODE_HEADERS, records, node_row)


@node_group.command("inspect")
@click.argument("nodes", nargs=-1, required=True, metavar="NODE...")
def inspect_nodes(nodes: tuple[str, ...]) -> None:
    """Display detailed information on one or more nodes"""
    stub = client.stub()
    found, errors = [], []
    for ref in nodes:
        try:
            found.append(message_dict(stub.GetNode(control_pb2.GetNodeRequest(node_id=ref)).node))
        except grpc.RpcError as err:
            errors.append(client.item_error(err))
    print_json(found)
    if errors:
        raise click.ClickException("\n".join(errors))
