"""``shoal volume create|ls|inspect|rm``: node-local named volumes, as docker's local driver.

A volume named in ``--mount type=volume`` or ``-v NAME:/dst`` is also created on first use.
Removing a volume is refused while any container (running or not) names it.
"""

from __future__ import annotations

import json

import click

from shoal.cli.aliases import AliasGroup
from shoal.cli.containers_common import new_id, root_option, run_async, runtime
from shoal.cli.output import format_table
from shoal.runtime import ContainerError


@click.group("volume", cls=AliasGroup, aliases={"list": "ls"}, short_help="Manage volumes")
def volume_group() -> None:
    """Manage the named volumes of this node."""


@volume_group.command("create", short_help="Create a volume")
@click.argument("name", required=False)
@root_option
@run_async
async def create_command(name: str | None, root: str) -> None:
    async with runtime(root) as rt:
        vol = (await rt.volume("create", name or new_id()))["volume"]
    click.echo(vol["name"])


@volume_group.command("ls", short_help="List volumes")
@click.option("-q", "--quiet", is_flag=True, help="Only display volume names")
@root_option
@run_async
async def ls_command(quiet: bool, root: str) -> None:
    async with runtime(root) as rt:
        vols = (await rt.volume("ls"))["volumes"]
    if quiet:
        for v in vols:
            click.echo(v["name"])
        return
    click.echo(format_table(["DRIVER", "VOLUME NAME"], [[v["driver"], v["name"]] for v in vols]))


@volume_group.command("inspect", short_help="Display detailed information on one or more volumes")
@click.argument("names", nargs=-1, required=True)
@root_option
@run_async
async def inspect_command(names: tuple[str, ...], root: str) -> None:
    out = []
    async with runtime(root) as rt:
        for name in names:
            v = (await rt.volume("inspect", name))["volume"]
            out.append({"Name": v["name"], "Driver": v["driver"], "Mountpoint": v["mountpoint"], "Scope": "local", "UsedBy": v.get("used_by", [])})
    click.echo(json.dumps(out, indent=4))


@volume_group.command("rm", short_help="Remove one or more volumes")
@click.argument("names", nargs=-1, required=True)
@root_option
@run_async
async def rm_command(names: tuple[str, ...], root: str) -> None:
    errors = []
    async with runtime(root) as rt:
        for name in names:
            try:
                await rt.volume("rm", name)
                click.echo(name)
            except ContainerError as exc:
                errors.append(str(exc))
    if errors:
        raise click.ClickException("\n".join(errors))
