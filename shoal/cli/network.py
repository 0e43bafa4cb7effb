"""``shoal network create|ls|inspect|rm``: the cluster's overlay networks, as docker's network commands.

Thin: parse flags, call the control API, print with ``network_views``. ``rm`` and ``inspect`` of
several networks go on after one fails and exit 1 at the end, like docker.
"""

from __future__ import annotations

import click
import grpc

from shoal.cli import client
from shoal.cli.aliases import AliasGroup
from shoal.cli.network_views import (
    NETWORK_FILTER_CHOICES,
    NETWORK_FILTERS,
    NETWORK_HEADERS,
    network_dict,
    network_matches,
    network_record,
)
from shoal.cli.output import emit_list, emit_objects, format_option, inspect_format_option, parse_filters
from shoal.cli.service_opts import parse_kv
from shoal.proto import control_pb2, types_pb2


@click.group("network", cls=AliasGroup, aliases={"list": "ls", "remove": "rm"}, short_help="Manage networks")
def network_group() -> None:
    """Manage the cluster's overlay networks."""


@network_group.command("create", short_help="Create a network")
@click.option(
    "-d", "--driver", default="overlay", show_default=True, help="Driver to manage the Network (overlay only)"
)
@click.option(
    "--subnet",
    default="",
    metavar="CIDR",
    help="Subnet in CIDR format (default: the next free one from the cluster's pool)",
)
@click.option("--attachable", is_flag=True, help="Enable manual container attachment (shoal run --network)")
@click.option("-l", "--label", multiple=True, metavar="list", help="Set metadata on a network")
@click.argument("name")
def create_command(driver: str, subnet: str, attachable: bool, label: tuple[str, ...], name: str) -> None:
    """Create an overlay network NAME with its own subnet and VXLAN id."""
    spec = types_pb2.NetworkSpec(name=name, driver=driver, subnet=subnet, attachable=attachable)
    for value in label:
        k, v = parse_kv("--label", value)
        spec.labels[k] = v
    net = client.stub().CreateNetwork(control_pb2.CreateNetworkRequest(spec=spec)).network
    click.echo(net.id)


@network_group.command("ls", short_help="List networks")
@click.option("-q", "--quiet", is_flag=True, help="Only display network IDs")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output")
@click.option("-f", "--filter", "filters", multiple=True, metavar="filter",
              help="Provide filter values (driver, id, label, name, scope, type)")
@format_option
def ls_command(quiet: bool, no_trunc: bool, filters: tuple[str, ...], fmt: str) -> None:
    wanted = parse_filters(filters, NETWORK_FILTERS, NETWORK_FILTER_CHOICES)
    nets = client.stub().ListNetworks(control_pb2.ListNetworksRequest()).networks
    records = [network_record(n, no_trunc) for n in nets if network_matches(n, wanted)]
    emit_list(fmt, quiet, NETWORK_HEADERS, records, lambda r: [r["ID"], r["Name"], r["Driver"], r["Scope"]])


@network_group.command("inspect", short_help="Display detailed information on one or more networks")
@inspect_format_option
@click.argument("networks", nargs=-1, required=True, metavar="NETWORK...")
def inspect_command(fmt: str | None, networks: tuple[str, ...]) -> None:
    stub = client.stub()
    out, errors = [], []
    for ref in networks:
        try:
            got = stub.GetNetwork(control_pb2.GetNetworkRequest(network_id=ref))
            out.append(network_dict(got.network, got.services, got.containers))
        except grpc.RpcError as err:
            errors.append(client.item_error(err))
    emit_objects(fmt, out)
    if errors:
        raise click.ClickException("\n".join(errors))


@network_group.command("rm", short_help="Remove one or more networks")
@click.argument("networks", nargs=-1, required=True, metavar="NETWORK...")
def rm_command(networks: tuple[str, ...]) -> None:
    stub = client.stub()
    errors = []
    for ref in networks:
        try:
            stub.RemoveNetwork(control_pb2.RemoveNetworkRequest(network_id=ref))
            click.echo(ref)
        except grpc.RpcError as err:
            errors.append(client.item_error(err))
    if errors:
        raise click.ClickException("\n".join(errors))
