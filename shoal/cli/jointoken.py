"""``shoal join-token worker|manager [--rotate] [-q]``: show or rotate a join token, as docker does."""

from __future__ import annotations

import click

from shoal.cli import client
from shoal.proto import control_pb2 as cpb


@click.command("join-token")
@click.argument("role", type=click.Choice(["worker", "manager"]))
@click.option("--rotate", is_flag=True, help="replace the token with a new one; the old one stops working")
@click.option("-q", "--quiet", is_flag=True, help="only display the token")
def join_token_cmd(role: str, rotate: bool, quiet: bool) -> None:
    """Manage join tokens."""
    stub = client.stub()
    if rotate:
        stub.RotateJoinToken(cpb.RotateJoinTokenRequest(role=role))
        if not quiet:
            click.echo(f"Successfully rotated {role} join token.\n")
    resp = stub.GetCluster(cpb.GetClusterRequest())
    token = getattr(resp.cluster, f"{role}_token")
    if quiet:
        click.echo(token)
        return
    addr = resp.managers[0] if resp.managers else "<manager-address>"
    command = f"shoal worker --join {addr} --token {token}" if role == "worker" else f"shoal manager --join {addr} --token {token} --etcd <etcd endpoints>"
    click.echo(f"To add a {role} to this cluster, run the following command:\n\n    {command}\n")
