"""``shoal node``: ls, inspect, ps, update, promote, demote and rm, after docker's node commands.

STATUS is the node's liveness (Ready/Down/Unknown), AVAILABILITY its scheduling setting
(Active/Pause/Drain), MANAGER STATUS Leader/Reachable/Unreachable for managers and empty for workers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click
import grpc

from shoal import ids
from shoal.cli import client
from shoal.cli.aliases import AliasGroup
from shoal.cli.docker_views import node_doc
from shoal.cli.node_views import NODE_FILTERS, check_filter_values, node_matches, pretty_node
from shoal.cli.output import (
    emit_list,
    emit_objects,
    format_option,
    inspect_format_option,
    parse_filters,
    quiet_option,
)
from shoal.cli.service_views import TASK_HEADERS, keep_records, task_records, task_row, task_view
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


def node_record(node: types_pb2.Node, self_id: str = "") -> dict[str, Any]:
    """One ``node ls`` row as a JSON object (full id; ``Self``: the node of the manager the CLI talks to)."""
    return {
        "ID": node.id,
        "Self": node.id == self_id,
        "Hostname": node.description.hostname,
        "Status": types_pb2.NodeStatus.State.Name(node.status.state).capitalize(),
        "Availability": types_pb2.NodeSpec.Availability.Name(node.spec.availability).capitalize(),
        "ManagerStatus": manager_status(node),
        "EngineVersion": node.description.engine_labels.get("shoal.version", ""),
        "TLSStatus": "Ready",  # docker's "Needs Rotation" is for a node whose certificate another root CA signed: shoal has one CA
    }


def node_row(rec: Mapping[str, Any]) -> list[str]:
    return [
        ids.short(rec["ID"]) + (" *" if rec.get("Self") else ""),  # docker marks the node it talks to
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
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output (id=, name=, role=, membership=, label=, node.label=)")
@format_option
@quiet_option
def list_nodes(filters: tuple[str, ...], fmt: str, quiet: bool) -> None:
    """List nodes in the cluster"""
    f = parse_filters(filters, NODE_FILTERS)
    if problem := check_filter_values(f):
        raise click.UsageError(problem)
    stub = client.stub()
    nodes = stub.ListNodes(control_pb2.ListNodesRequest()).nodes
    shown = [n for n in nodes if node_matches(f, n)]
    me = _self_id(stub) if shown and not quiet else ""
    records = [node_record(n, me) for n in sorted(shown, key=lambda n: (n.description.hostname, n.id))]
    emit_list(fmt, quiet, NODE_HEADERS, records, node_row)
    notes = sorted({n.status.message for n in nodes if n.status.message.startswith("mass disruption")})
    for note in notes:  # on stderr: the table and JSON stay what scripts parse
        click.echo(f"Note: {note}", err=True)


def _self_id(stub: Any) -> str:
    """The id of the node the manager we talk to runs on ("" if it cannot say)."""
    try:
        return str(stub.GetNode(control_pb2.GetNodeRequest(node_id="self")).node.id)
    except grpc.RpcError:
        return ""


@node_group.command("inspect")
@click.argument("nodes", nargs=-1, required=True, metavar="NODE...|self")
@click.option("--pretty", is_flag=True, help="Print the information in a human friendly format")
@inspect_format_option
def inspect_nodes(nodes: tuple[str, ...], pretty: bool, fmt: str | None) -> None:
    """Display detailed information on one or more nodes (``self``: the node of the manager you talk to)"""
    stub = client.stub()
    found, errors = [], []
    for ref in nodes:
        try:
            found.append(stub.GetNode(control_pb2.GetNodeRequest(node_id=ref)).node)
        except grpc.RpcError as err:
            errors.append(client.item_error(err))
    if pretty and not fmt:
        click.echo("\n\n".join(pretty_node(n) for n in found))
    else:
        emit_objects(fmt, [node_doc(n) for n in found])
    if errors:
        raise click.ClickException("\n".join(errors))


CONFLICT_RETRIES = 3


def _set_label(spec: types_pb2.NodeSpec, add: tuple[str, ...], rm: tuple[str, ...]) -> None:
    for kv in add:
        k, sep, v = kv.partition("=")
        if not k:
            raise click.UsageError(f"invalid label {kv!r}: expected KEY=VALUE or KEY")
        spec.labels[k] = v if sep else ""
    for k in rm:
        if k not in spec.labels:
            raise click.ClickException(f"key {k} doesn't exist in node's labels")
        del spec.labels[k]


def update_node(ref: str, change) -> types_pb2.Node:
    """Apply ``change(spec)`` to the node's spec with optimistic concurrency, re-reading on a conflict."""
    stub = client.stub()
    for attempt in range(CONFLICT_RETRIES + 1):
        node = stub.GetNode(control_pb2.GetNodeRequest(node_id=ref)).node
        spec = types_pb2.NodeSpec()
        spec.CopyFrom(node.spec)
        change(spec)
        try:
            return stub.UpdateNode(control_pb2.UpdateNodeRequest(node_id=node.id, version=node.meta.version, spec=spec)).node
        except grpc.RpcError as err:
            stale = "out of sequence" in (err.details() or "") if hasattr(err, "details") else False
            if not stale or attempt == CONFLICT_RETRIES:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _each(refs: tuple[str, ...], fn) -> None:
    """Run ``fn(ref)`` for every node; print errors per node and fail at the end if any."""
    errors = []
    for ref in refs:
        try:
            fn(ref)
        except grpc.RpcError as err:
            errors.append(client.item_error(err))
    if errors:
        raise click.ClickException("\n".join(errors))


@node_group.command("update")
@click.argument("node", metavar="NODE")
@click.option("--availability", type=click.Choice(["active", "pause", "drain"]), help="Availability of the node")
@click.option("--role", type=click.Choice(["worker", "manager"]), help="Role of the node")
@click.option("--label-add", multiple=True, metavar="KEY=VALUE", help="Add or update a node label")
@click.option("--label-rm", multiple=True, metavar="KEY", help="Remove a node label if it exists")
def update(node: str, availability: str | None, role: str | None, label_add: tuple[str, ...], label_rm: tuple[str, ...]) -> None:
    """Update a node"""

    def change(spec: types_pb2.NodeSpec) -> None:
        if availability:
            spec.availability = types_pb2.NodeSpec.Availability.Value(availability.upper())
        if role:
            spec.role = types_pb2.NodeSpec.Role.Value(role.upper())
        _set_label(spec, label_add, label_rm)

    _each((node,), lambda ref: update_node(ref, change))
    click.echo(node)


def _set_role(refs: tuple[str, ...], role: int, verb: str) -> None:
    def one(ref: str) -> None:
        before = client.stub().GetNode(control_pb2.GetNodeRequest(node_id=ref)).node
        if before.spec.role == role:
            click.echo(f"Node {ref} is already a {types_pb2.NodeSpec.Role.Name(role).lower()} in the cluster.")
            return
        update_node(ref, lambda spec: setattr(spec, "role", role))
        # the node's agent sees the change at once: it renews its certificate and starts (or stops) its manager
        click.echo(f"Node {ref} {verb} to a {types_pb2.NodeSpec.Role.Name(role).lower()} in the cluster.")

    _each(refs, one)


@node_group.command("promote")
@click.argument("nodes", nargs=-1, required=True, metavar="NODE...")
def promote(nodes: tuple[str, ...]) -> None:
    """Promote one or more nodes to manager in the cluster"""
    _set_role(nodes, types_pb2.NodeSpec.MANAGER, "promoted")


@node_group.command("demote")
@click.argument("nodes", nargs=-1, required=True, metavar="NODE...")
def demote(nodes: tuple[str, ...]) -> None:
    """Demote one or more nodes from manager in the cluster"""
    _set_role(nodes, types_pb2.NodeSpec.WORKER, "demoted")


@node_group.command("rm")
@click.argument("nodes", nargs=-1, required=True, metavar="NODE...")
@click.option("-f", "--force", is_flag=True, help="Force remove a node from the cluster")
def remove(nodes: tuple[str, ...], force: bool) -> None:
    """Remove one or more nodes from the cluster"""

    def one(ref: str) -> None:
        client.stub().RemoveNode(control_pb2.RemoveNodeRequest(node_id=ref, force=force))
        click.echo(ref)

    _each(nodes, one)


def _leader(stub) -> str:
    for n in stub.ListNodes(control_pb2.ListNodesRequest()).nodes:
        if n.manager_status.leader:
            return n.id
    raise click.ClickException("no leader known; name a NODE")


@node_group.command("ps")
@click.argument("nodes", nargs=-1, metavar="[NODE...]")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output (desired-state=, name=, id=)")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output")
@format_option
@quiet_option
def node_ps(nodes: tuple[str, ...], filters: tuple[str, ...], no_trunc: bool, fmt: str, quiet: bool) -> None:
    """List tasks running on one or more nodes, defaults to the leader's node"""
    f = parse_filters(filters, ("desired-state", "name", "id"))
    stub = client.stub()
    refs = nodes or (_leader(stub),)
    ids_, errors = [], []
    for ref in refs:
        try:
            ids_.append(stub.GetNode(control_pb2.GetNodeRequest(node_id=ref)).node.id)
        except grpc.RpcError as err:
            errors.append(client.item_error(err))
    if ids_:
        tasks = list(stub.ListTasks(control_pb2.ListTasksRequest(node_ids=ids_)).tasks)
        names = {n.id: n.description.hostname for n in stub.ListNodes(control_pb2.ListNodesRequest()).nodes}
        records = keep_records(
            task_records(tasks, names, no_trunc),
            lambda r: ("desired-state" not in f or str(r["DesiredState"]).lower() in [v.lower() for v in f["desired-state"]])
            and ("name" not in f or any(str(r["Name"]).startswith(n) for n in f["name"]))
            and ("id" not in f or any(str(r["ID"]).startswith(i) for i in f["id"])),
        )
        emit_list(fmt, quiet, TASK_HEADERS, records, lambda r: task_row(r, no_trunc), task_view(no_trunc, fmt))
    if errors:
        raise click.ClickException("\n".join(errors))
