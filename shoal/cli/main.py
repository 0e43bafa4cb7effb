"""The ``shoal`` command: the root group, the --host option and the translation of errors.

Commands reach the manager through ``client.stub()``, which uses the factory in ``ctx.obj["connect"]``
(``client.connect`` unless a test injects a fake: ``CliRunner().invoke(main, args, obj={"connect":
lambda host: FakeStub()})``). gRPC failures that reach this level become one ``Error: ...`` line
and exit status 1, never a traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from shoal import __version__
from shoal.cli.aliases import AliasGroup
from shoal.cli.defaults import DEFAULT_HOST

# Every command is imported only when it runs (or when --help lists it): `shoal run` needs no gRPC and
# `shoal svc ls` no container runtime, stack loader or lab engine. name -> "module:attribute".
LAZY_COMMANDS: dict[str, str] = {
    "service": "shoal.cli.service:service_group",
    "node": "shoal.cli.node:node_group",
    "task": "shoal.cli.task:task_group",
    "stack": "shoal.cli.stack:stack_group",
    "lab": "shoal.cli.lab:lab_group",
    "join-token": "shoal.cli.jointoken:join_token_cmd",
    "etcd-certs": "shoal.cli.etcdcerts:etcd_certs_cmd",
    "manager": "shoal.cli.daemons:manager_cmd",
    "worker": "shoal.cli.daemons:worker_cmd",
    "run": "shoal.cli.run:run_command",
    "ps": "shoal.cli.containers:ps_command",
    "stop": "shoal.cli.containers:stop_command",
    "kill": "shoal.cli.containers:kill_command",
    "rm": "shoal.cli.containers:rm_command",
    "exec": "shoal.cli.containers:exec_command",
    "logs": "shoal.cli.containers:logs_command",
    "stats": "shoal.cli.containers:stats_command",
    "image": "shoal.cli.images:image_group",
    "images": "shoal.cli.images:images_command",
    "volume": "shoal.cli.volumes:volume_group",
    "network": "shoal.cli.network:network_group",
    "secret": "shoal.cli.secret:secret_group",
    "config": "shoal.cli.secret:config_group",
    "demo": "shoal.cli.demo:demo_group",
    "events": "shoal.cli.events:events_cmd",
}


class RootGroup(AliasGroup):
    """Loads commands lazily (``LAZY_COMMANDS``) and turns a gRPC error escaping any command into
    ``Error: <message>`` and exit 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        name = self.aliases.get(cmd_name, cmd_name)
        if name not in self.commands and name in LAZY_COMMANDS:
            module, attr = LAZY_COMMANDS[name].split(":")
            __import__(module)
            self.add_command(getattr(sys.modules[module], attr), name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as err:
            grpc = sys.modules.get("grpc")  # only commands that talk to a manager import it
            if grpc is None or not isinstance(err, grpc.RpcError):
                raise
            from shoal.cli import client

            host = (ctx.obj or {}).get("host") or DEFAULT_HOST
            raise click.ClickException(client.rpc_error_message(err, host)) from None


@click.group(cls=RootGroup, aliases={"svc": "service"}, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-H",
    "--host",
    envvar="SHOAL_HOST",
    default=DEFAULT_HOST,
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
    obj.setdefault("connect", _connect)


def _connect(*args: Any, **kwargs: Any) -> Any:
    """``client.connect``, imported only by commands that reach a manager (it loads gRPC)."""
    from shoal.cli import client

    return client.connect(*args, **kwargs)


def _lab_host(name: str) -> str:
    from shoal.lab.cluster import host_for
    from shoal.lab.state import LabError

    try:
        return host_for(name)
    except LabError as exc:
        raise click.ClickException(str(exc)) from None
