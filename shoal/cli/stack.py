"""``shoal stack``: deploy a compose file as a set of services, list, inspect and remove stacks.

Thin commands over ``shoal.stack``: the stack is loaded and checked completely before anything is
sent, every problem is printed as ``file:line:column: key.path: message`` and the command exits 1
with nothing deployed. The stack models are imported only by the commands that read a file
(``config``, ``deploy``, in ``stack_deploy``), so every other ``shoal`` command starts as fast as before.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import click
import grpc

from shoal.cli import client, stack_files
from shoal.cli.output import (
    SERVICE_FILTER_VALUES,
    TASK_FILTER_VALUES,
    emit_list,
    format_option,
    parse_filters,
    quiet_option,
)
from shoal.cli.service import service_matches, task_matches
from shoal.cli.service_views import (
    SERVICE_HEADERS,
    TASK_HEADERS,
    keep_records,
    service_record,
    service_row,
    service_template_record,
    task_records,
    task_row,
    task_view,
)
from shoal.proto import control_pb2, types_pb2
from shoal.stack import NAMESPACE_LABEL

NETWORK_RELEASE_S = 60.0
"""How long ``stack rm`` waits for the removed services' tasks to release a network's addresses."""
COMPOSE_FILE_HELP = "Path to a Compose file, or - to read from stdin (repeat to merge files, later ones win)"


def stack_services(namespace: str) -> list[types_pb2.Service]:
    """The services labelled as part of stack ``namespace``."""
    resp = client.stub().ListServices(control_pb2.ListServicesRequest())
    return [s for s in resp.services if s.spec.labels.get(NAMESPACE_LABEL) == namespace]


def cluster_networks() -> dict[str, str] | None:
    """The cluster's networks, name -> id; None when its manager has no network API yet."""
    try:
        resp = client.stub().ListNetworks(control_pb2.ListNetworksRequest())
    except grpc.RpcError as err:
        if getattr(err, "code", lambda: None)() == grpc.StatusCode.UNIMPLEMENTED:
            return None
        raise
    return {n.spec.name: n.id for n in resp.networks}


def deploy_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The flags of ``stack deploy``, docker's names."""
    for opt in reversed([
        click.option("-c", "--compose-file", "files", multiple=True, metavar="strings", help=COMPOSE_FILE_HELP),
        click.option("--prune", is_flag=True, help="Prune services that are no longer referenced"),
        click.option("--dry-run", is_flag=True, help="Print what would be created, updated and removed; change nothing"),
        click.option("--resolve-image", type=click.Choice(["always", "changed", "never"]), default="always", show_default=True, help="Check images against the cluster's image store"),
        click.option("-d", "--detach", type=click.BOOL, default=True, show_default=True, is_flag=False, flag_value=True, help="Exit immediately instead of waiting for the stack services to converge"),
        click.option("-q", "--quiet", is_flag=True, help="Suppress progress output"),
    ]):  # fmt: skip
        fn = opt(fn)
    return fn


@click.group("stack")
def stack_group() -> None:
    """Manage stacks"""


@stack_group.command("config")
@click.option("-c", "--compose-file", "files", multiple=True, metavar="strings", help=COMPOSE_FILE_HELP)
def config_command(files: tuple[str, ...]) -> None:
    """Outputs the final config file, after doing merges and interpolations"""
    from shoal.cli.stack_deploy import load_or_exit
    from shoal.stack.render import render_config

    stack = load_or_exit(files)
    click.echo(render_config(stack.compose), nl=False)


@stack_group.command("deploy")
@click.argument("namespace", metavar="STACK")
@deploy_options
def deploy_command(namespace: str, files: tuple[str, ...], prune: bool, dry_run: bool, resolve_image: str, detach: bool, quiet: bool) -> None:
    """Deploy a new stack or update an existing stack"""
    from shoal.cli.stack_deploy import deploy, load_and_convert

    plan = load_and_convert(files, namespace)
    deploy(plan, prune=prune, dry_run=dry_run, resolve_image=resolve_image != "never", detach=detach, quiet=quiet)


@stack_group.command("ls")
@format_option
def list_stacks(fmt: str) -> None:
    """List stacks"""
    resp = client.stub().ListServices(control_pb2.ListServicesRequest())
    counts = Counter(s.spec.labels[NAMESPACE_LABEL] for s in resp.services if NAMESPACE_LABEL in s.spec.labels)
    records = [{"Name": name, "Services": str(n)} for name, n in sorted(counts.items())]
    emit_list(fmt, False, ["NAME", "SERVICES"], records, lambda r: [r["Name"], r["Services"]])


@stack_group.command("services")
@click.argument("namespace", metavar="STACK")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output (name=, id=, mode=, label=)")
@format_option
@quiet_option
def stack_services_command(namespace: str, filters: tuple[str, ...], fmt: str, quiet: bool) -> None:
    """List the services in the stack"""
    f = parse_filters(filters, ("name", "id", "mode", "label"), SERVICE_FILTER_VALUES)
    resp = client.stub().ListServices(control_pb2.ListServicesRequest())
    mine = [s for s in resp.services if s.spec.labels.get(NAMESPACE_LABEL) == namespace]
    if not mine:
        raise click.ClickException(f"Nothing found in stack: {namespace}")
    records = [service_record(s, resp.summaries.get(s.id)) for s in sorted(mine, key=lambda s: s.spec.name) if service_matches(f, s)]
    emit_list(fmt, quiet, SERVICE_HEADERS, records, service_row, service_template_record)


@stack_group.command("ps")
@click.argument("namespace", metavar="STACK")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output (desired-state=, node=, id=, name=)")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output")
@format_option
@quiet_option
def stack_ps(namespace: str, filters: tuple[str, ...], no_trunc: bool, fmt: str, quiet: bool) -> None:
    """List the tasks in the stack"""
    f = parse_filters(filters, ("desired-state", "node", "id", "name"), TASK_FILTER_VALUES)
    mine = stack_services(namespace)
    if not mine:
        raise click.ClickException(f"Nothing found in stack: {namespace}")
    stub = client.stub()
    tasks = list(stub.ListTasks(control_pb2.ListTasksRequest(service_ids=[s.id for s in mine])).tasks)
    names = {n.id: n.description.hostname for n in stub.ListNodes(control_pb2.ListNodesRequest()).nodes}
    by_id = {t.id: t for t in tasks}
    records = keep_records(task_records(tasks, names, no_trunc), lambda r: task_matches(f, r, by_id[str(r["ID"])]))
    emit_list(fmt, quiet, TASK_HEADERS, records, lambda r: task_row(r, no_trunc), task_view(no_trunc, fmt))


def _stack_networks(namespace: str) -> list[types_pb2.Network]:
    """The networks labelled as part of stack ``namespace`` (none when the cluster has no network API)."""
    if cluster_networks() is None:
        return []
    nets = client.stub().ListNetworks(control_pb2.ListNetworksRequest()).networks
    return sorted((n for n in nets if n.spec.labels.get(NAMESPACE_LABEL) == namespace), key=lambda n: n.spec.name)


def _remove_networks(nets: list[types_pb2.Network]) -> bool:
    """Remove ``nets``; True when one could not be removed.

    The tasks of services just removed still hold addresses on their networks until they are shut
    down, so a network "in use" is tried again until NETWORK_RELEASE_S have passed.
    """
    stub = client.stub()
    failed = False
    for net in nets:
        click.echo(f"Removing network {net.spec.name}")
        deadline = time.monotonic() + NETWORK_RELEASE_S
        while True:
            try:
                stub.RemoveNetwork(control_pb2.RemoveNetworkRequest(network_id=net.id))
                break
            except grpc.RpcError as err:
                in_use = getattr(err, "code", lambda: None)() == grpc.StatusCode.FAILED_PRECONDITION
                if not in_use or time.monotonic() >= deadline:
                    click.echo(f"Failed to remove network {net.spec.name}: {client.item_error(err)}", err=True)
                    failed = True
                    break
                time.sleep(0.5)
    return failed


@stack_group.command("rm")
@click.argument("namespaces", nargs=-1, required=True, metavar="STACK...")
def remove_stacks(namespaces: tuple[str, ...]) -> None:
    """Remove one or more stacks"""
    stub = client.stub()
    failed = False
    for namespace in namespaces:
        mine = stack_services(namespace)
        nets = _stack_networks(namespace)
        files = stack_files.labelled(namespace)
        if not mine and not nets and not files:
            click.echo(f"Nothing found in stack: {namespace}", err=True)
            continue
        for svc in sorted(mine, key=lambda s: s.spec.name):
            click.echo(f"Removing service {svc.spec.name}")
            try:
                stub.RemoveService(control_pb2.RemoveServiceRequest(service_id=svc.id))
            except grpc.RpcError as err:
                click.echo(f"Failed to remove service {svc.spec.name}: {client.item_error(err)}", err=True)
                failed = True
        failed = stack_files.remove(files) or failed
        failed = _remove_networks(nets) or failed
    if failed:
        click.get_current_context().exit(1)
