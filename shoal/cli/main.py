"""The ``shoal`` command: the root group, the --host option and the translation of errors.

Commands reach the manager through ``client.stub()``, which uses the factory in ``ctx.obj["connect"]``
(``client.connect`` unless a test injects a fake: ``CliRunner().invoke(main, args, obj={"connect":
lambda host: FakeStub()})``). gRPC failures that reach this level become one ``Error: ...`` line
and exit status 1, never a traceback.
"""

from __future__ import annotations

from typing import Any

import click
import grpc

from shoal import __version__
from shoal.cli import client
from shoal.cli.aliases import AliasGroup
from shoal.cli.jointoken import join_token_cmd
from shoal.cli.lab import lab_group
from shoal.cli.node import node_group
from shoal.cli.service import service_group
from shoal.cli.stack import stack_group


class RootGroup(AliasGroup):
    """Turns a gRPC error escaping any command into ``Error: <message>`` and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except grpc.RpcError as err:
            host = (ctx.obj or {}).get("host") or client.DEFAULT_HOST
            raise click.ClickException(client.rpc_error_message(err, host)) from None


@click.group(cls=RootGroup, aliases={"svc": "service"}, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-H",
    "--host",
    envvar="SHOAL_HOST",
    default=client.DEFAULT_HOST,
    show_default=True,
    help="Manager control API: unix:///path.sock, /path.sock or HOST:PORT (env SHOAL_HOST)",
)
@click.option("--tlscacert", default="", envvar="SHOAL_TLS_CACERT", help="CA certificate for a TCP host (default: SHOAL_CERT_PATH or ~/.shoal/certificates)")
@click.option("--tlscert", default="", envvar="SHOAL_TLS_CERT", help="admin client certificate for a TCP host")
@click.option("--tlskey", default="", envvar="SHOAL_TLS_KEY", help="admin client key for a TCP host")
@click.option("--lab", "lab", default=None, envvar="SHOAL_LAB", help="talk to the lab cluster of this name (see `shoal lab`; env SHOAL_LAB)")
@click.version_option(__version__, prog_name="shoal")
@click.pass_context
def main(ctx: click.Context, host: str, tlscacert: str, tlscert: str, tlskey: str, lab: str | None) -> None:
    """shoal: a Docker-Swarm-style cluster orchestrator."""
    obj = ctx.ensure_object(dict)
    if lab and ctx.invoked_subcommand != "lab":
        host = _lab_host(lab)
    obj["lab"] = lab
    obj["host"] = host
    obj["tls"] = {"ca": tlscacert, "cert": tlscert, "key": tlskey}
    obj.setdefault("connect", client.connect)


def _lab_host(name: str) -> str:
    from shoal.lab.cluster import host_for
    from shoal.lab.state import LabError

    try:
        return host_for(name)
    except LabError as exc:
        raise click.ClickException(str(exc)) from None


main.add_command(service_group)
main.add_command(node_group)
main.add_command(stack_group)
main.add_command(lab_group)
main.add_command(join_token_cmd)


def _register_local() -> None:
    """The node-local container commands (``shoal run``, ``ps``, ``image``, ...; see containers*.py)."""
    from shoal.cli import containers, images, run, volumes

    for cmd in (
        run.run_command, containers.ps_command, containers.stop_command, containers.kill_command,
        containers.rm_command, containers.exec_command, containers.logs_command, containers.stats_command,
        images.image_group, images.images_command, volumes.volume_group,
    ):  # fmt: skip
        main.add_command(cmd)


_register_local()

try:
    from shoal.cli import daemons

    daemons.register(main)  # adds the `manager` and `worker` commands to the group
except ImportError:  # pragma: no cover - only while the daemons module is being written
    pass
