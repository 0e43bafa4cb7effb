"""``shoal service`` (alias ``svc``): create, update, ls, ps, inspect, scale and rm, as docker's service commands.

Each command is a thin layer: parse arguments, call the control API, hand the result to the pure
views in ``service_views``. Commands on several services (``rm a b``, ``scale a=1 b=2``) go on after
one fails, report it, and exit 1 at the end, like docker.
"""

from __future__ import annotations

from typing import Any

import click
import grpc

from shoal.cli import client
from shoal.cli.aliases import AliasGroup
from shoal.cli.output import (
    SERVICE_FILTER_VALUES,
    TASK_FILTER_VALUES,
    emit_list,
    emit_objects,
    format_option,
    inspect_format_option,
    parse_filters,
    quiet_option,
)
from shoal.cli.service_views import (
    SERVICE_HEADERS,
    TASK_HEADERS,
    keep_records,
    pending_reasons,
    pretty_service,
    service_matches,  # noqa: F401  (re-exported: stack.py's ls filters as svc ls)
    service_records,
    service_row,
    service_template_record,
    task_records,
    task_row,
    task_view,
    why_lines,
)
from shoal.proto import control_pb2, types_pb2

ServiceSpec = types_pb2.ServiceSpec
CONFLICT_RETRIES = 3


LAZY = {
    "create": "shoal.cli.service_create:create_command",
    "update": "shoal.cli.service_update:update_command",
    "rollback": "shoal.cli.service_update:rollback_command",
    "logs": "shoal.cli.service_logs:logs_command",
}
"""Loaded when they run: the spec flags, their validation and the progress display are not `svc ls`'s to pay."""


@click.group("service", cls=AliasGroup, aliases={"list": "ls", "remove": "rm"}, lazy=LAZY)
def service_group() -> None:
    """Manage services"""


def get_service(ref: str) -> types_pb2.Service:
    return client.stub().GetService(control_pb2.GetServiceRequest(service_id=ref)).service


@service_group.command("ls")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output (name=, id=, mode=, label=)")
@format_option
@quiet_option
def list_services(filters: tuple[str, ...], fmt: str, quiet: bool) -> None:
    """List services"""
    f = parse_filters(filters, ("name", "id", "mode", "label"), SERVICE_FILTER_VALUES)
    resp = client.stub().ListServices(control_pb2.ListServicesRequest())
    emit_list(fmt, quiet, SERVICE_HEADERS, service_records(resp, f), service_row, service_template_record)


def task_matches(f: dict[str, list[str]], rec: dict[str, Any], task: types_pb2.Task) -> bool:
    if "desired-state" in f and rec["DesiredState"].lower() not in [v.lower() for v in f["desired-state"]]:
        return False
    if "node" in f and not any(
        n in (task.node_id, rec["Node"]) or task.node_id.startswith(n) for n in f["node"]
    ):
        return False
    if "id" in f and not any(task.id.startswith(i) for i in f["id"]):
        return False
    return "name" not in f or any(str(rec["Name"]).startswith(n) for n in f["name"])


@service_group.command("ps")
@click.argument("services", nargs=-1, required=True, metavar="SERVICE...")
@click.option(
    "-f", "--filter", "filters", multiple=True, help="Filter output (desired-state=, node=, id=, name=)"
)
@click.option("--no-trunc", is_flag=True, help="Do not truncate output")
@click.option("--why", is_flag=True, help="Explain in full why pending tasks have no node")
@format_option
@quiet_option
def list_tasks(
    services: tuple[str, ...], filters: tuple[str, ...], no_trunc: bool, why: bool, fmt: str, quiet: bool
) -> None:
    """List the tasks of one or more services"""
    f = parse_filters(filters, ("desired-state", "node", "id", "name"), TASK_FILTER_VALUES)
    stub = client.stub()
    ids, errors = [], []
    for ref in services:
        try:
            ids.append(get_service(ref).id)
        except grpc.RpcError as err:
            errors.append(client.item_error(err))
    if ids:
        tasks = list(stub.ListTasks(control_pb2.ListTasksRequest(service_ids=ids)).tasks)
        names = {n.id: n.description.hostname for n in stub.ListNodes(control_pb2.ListNodesRequest()).nodes}
        by_id = {t.id: t for t in tasks}
        records = keep_records(task_records(tasks, names, no_trunc), lambda r: task_matches(f, r, by_id[r["ID"]]))
        emit_list(
            fmt,
            quiet,
            TASK_HEADERS,
            records,
            lambda r: task_row(r, no_trunc),
            task_view(no_trunc, fmt),
        )
        if why:
            lines = why_lines(by_id[str(r["ID"])] for r in records)
            click.echo(
                "\n".join(["", "Pending tasks:", *(f"  {line}" for line in lines)])
                if lines
                else "\nNo task is waiting for a node."
            )
    if errors:
        raise click.ClickException("\n".join(errors))


@service_group.command("inspect")
@click.argument("services", nargs=-1, required=True, metavar="SERVICE...")
@click.option("--pretty", is_flag=True, help="Print the information in a human friendly format")
@inspect_format_option
def inspect_services(services: tuple[str, ...], pretty: bool, fmt: str | None) -> None:
    """Display detailed information on one or more services"""
    found, errors = [], []
    for ref in services:
        try:
            found.append(get_service(ref))
        except grpc.RpcError as err:
            errors.append(client.item_error(err))
    if pretty and not fmt:
        click.echo("\n\n".join(_pretty(s) for s in found))
    else:
        from shoal.cli.docker_views import service_doc  # inspect's shapes: not what `svc ls` needs to load

        emit_objects(fmt, [service_doc(s, _pending(s.id)) for s in found])
    if errors:
        raise click.ClickException("\n".join(errors))


def _pretty(s: types_pb2.Service) -> str:
    from shoal.cli.network_views import endpoint_lines

    pending = "".join(f"\nPending: {', '.join(n)}: {w}" for w, n in _pending(s.id).items())
    return pretty_service(s) + "\n" + "\n".join(endpoint_lines(s)) + pending


def _pending(service_id: str) -> dict[str, list[str]]:
    """The scheduler's explanations for this service's tasks that have no node (empty when none)."""
    return pending_reasons(
        client.stub().ListTasks(control_pb2.ListTasksRequest(service_ids=[service_id])).tasks
    )


def _parse_scale(arg: str) -> tuple[str, int]:
    name, sep, value = arg.partition("=")
    if not sep or not name:
        raise click.UsageError(f"invalid scale specifier '{arg}': expected SERVICE=REPLICAS")
    try:
        return name, int(value)
    except ValueError:
        raise click.UsageError(
            f"invalid replicas value {value!r} in '{arg}': expected a whole number"
        ) from None


def _is_conflict(err: grpc.RpcError) -> bool:
    code = getattr(err, "code", lambda: None)()
    details = (getattr(err, "details", lambda: "")() or "").lower()
    # the control API answers a stale version with FAILED_PRECONDITION "update out of sequence: ..."
    stale = "out of sequence" in details or "version" in details
    return code == grpc.StatusCode.ABORTED or (code == grpc.StatusCode.FAILED_PRECONDITION and stale)


def scale_one(ref: str, replicas: int) -> types_pb2.Service:
    """Set ``ref``'s replica count with optimistic concurrency, re-reading on a version conflict."""
    stub = client.stub()
    for attempt in range(CONFLICT_RETRIES + 1):
        service = get_service(ref)
        from shoal.spec import mode_allows

        if not mode_allows(service.spec.mode, "replicas"):
            raise click.ClickException(
                f"{ref}: scale can only be used with replicated or replicated-job mode"
            )
        spec = types_pb2.ServiceSpec()
        spec.CopyFrom(service.spec)
        spec.replicas = replicas
        req = control_pb2.UpdateServiceRequest(service_id=service.id, version=service.meta.version, spec=spec)
        try:
            return stub.UpdateService(req).service
        except grpc.RpcError as err:
            if not _is_conflict(err) or attempt == CONFLICT_RETRIES:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


@service_group.command("scale")
@click.argument("specs", nargs=-1, required=True, metavar="SERVICE=REPLICAS...")
@click.option(
    "-d", "--detach", is_flag=True, help="Exit immediately instead of waiting for the service to converge"
)
def scale_services(specs: tuple[str, ...], detach: bool) -> None:
    """Scale one or multiple replicated services"""
    wanted = [_parse_scale(a) for a in specs]
    scaled, errors = [], []
    for ref, n in wanted:
        try:
            service = scale_one(ref, n)
        except grpc.RpcError as err:
            errors.append(f"{ref}: {client.item_error(err)}")
            continue
        except click.ClickException as exc:
            errors.append(exc.message)
            continue
        click.echo(f"{ref} scaled to {n}")
        scaled.append(service.id or ref)
    if not detach and scaled:
        from shoal.cli import progress

        for sid in scaled:
            progress.wait(sid)
    if errors:
        raise click.ClickException("\n".join(errors))


@service_group.command("rm")
@click.argument("services", nargs=-1, required=True, metavar="SERVICE...")
def remove_services(services: tuple[str, ...]) -> None:
    """Remove one or more services"""
    stub = client.stub()
    errors = []
    for ref in services:
        try:
            stub.RemoveService(control_pb2.RemoveServiceRequest(service_id=ref))
        except grpc.RpcError as err:
            msg = client.item_error(err)
            click.echo(f"Error: {msg}", err=True)
            errors.append(msg)
            continue
        click.echo(ref)
    if errors:
        ctx = click.get_current_context()
        ctx.exit(1)
