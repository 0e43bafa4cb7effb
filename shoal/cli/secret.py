"""``shoal secret`` and ``shoal config``: create, ls, inspect, rm, as docker's commands of those names.

One definition serves both groups (they differ in what inspect shows: a secret's data never leaves
the managers, a config's does). Thin: read the data, call the control API, print with
``secret_views``. Name and size are checked here too, so a bad one fails before anything is sent;
``rm`` and ``inspect`` of several objects go on after one fails and exit 1 at the end, like docker.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
import grpc

from shoal import secretspec
from shoal.cli import client
from shoal.cli.aliases import AliasGroup
from shoal.cli.output import emit_list, emit_objects, format_option, inspect_format_option, parse_filters
from shoal.cli.secret_views import HEADERS, matches, obj_dict, pretty, record, row
from shoal.cli.service_opts import parse_kv
from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb

FILTERS = ("id", "name", "label")


def read_data(kind: str, path: str) -> bytes:
    """FILE, or standard input for ``-``; over docker's limit is refused before anything is sent."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read(secretspec.MAX_SIZE + 1)
            size = None
        else:
            with open(path, "rb") as f:
                data = f.read(secretspec.MAX_SIZE + 1)
                size: int | None = max(len(data), os.fstat(f.fileno()).st_size)
    except OSError as exc:
        raise click.ClickException(f"cannot read {kind} data from {path}: {exc.strerror}") from None
    try:
        secretspec.check_data(kind, data, size)
    except secretspec.SecretSpecError as exc:
        raise click.ClickException(str(exc)) from None
    return data


class _Calls:
    """The RPCs and messages of one kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        cap = kind.capitalize()
        self.create, self.get, self.list, self.remove = f"Create{cap}", f"Get{cap}", f"List{cap}s", f"Remove{cap}"
        self.spec_cls = pb.SecretSpec if kind == "secret" else pb.ConfigSpec

    def create_request(self, spec: Any) -> Any:
        return cpb.CreateSecretRequest(spec=spec) if self.kind == "secret" else cpb.CreateConfigRequest(spec=spec)

    def get_request(self, ref: str) -> Any:
        return cpb.GetSecretRequest(secret_id=ref) if self.kind == "secret" else cpb.GetConfigRequest(config_id=ref)

    def list_request(self) -> Any:
        return cpb.ListSecretsRequest() if self.kind == "secret" else cpb.ListConfigsRequest()

    def remove_request(self, ref: str) -> Any:
        return cpb.RemoveSecretRequest(secret_id=ref) if self.kind == "secret" else cpb.RemoveConfigRequest(config_id=ref)

    def unwrap(self, reply: Any) -> Any:
        return getattr(reply, self.kind)

    def unwrap_list(self, reply: Any) -> Any:
        return getattr(reply, self.kind + "s")


def make_group(kind: str) -> click.Group:
    """The ``shoal secret`` (or ``shoal config``) group with its four commands."""
    calls = _Calls(kind)

    @click.group(kind, cls=AliasGroup, aliases={"list": "ls", "remove": "rm"}, short_help=f"Manage {kind}s")
    def group() -> None:
        pass

    group.help = f"Manage the cluster's {kind}s."
    for add in (_create_command, _ls_command, _inspect_command, _rm_command):
        add(group, calls)
    return group


def _create_command(group: click.Group, calls: _Calls) -> None:
    kind = calls.kind

    @group.command("create", short_help=f"Create a {kind} from a file or STDIN as content")
    @click.option("-l", "--label", multiple=True, metavar="list", help=f"{kind.capitalize()} labels")
    @click.argument("name")
    @click.argument("file", metavar="FILE|-")
    def create_command(label: tuple[str, ...], name: str, file: str) -> None:
        try:
            secretspec.check_name(kind, name)
        except secretspec.SecretSpecError as exc:
            raise click.ClickException(str(exc)) from None
        spec = calls.spec_cls(name=name, data=read_data(kind, file))
        for value in label:
            k, v = parse_kv("--label", value)
            spec.labels[k] = v
        obj = calls.unwrap(getattr(client.stub(), calls.create)(calls.create_request(spec)))
        click.echo(obj.id)


def _ls_command(group: click.Group, calls: _Calls) -> None:
    kind = calls.kind

    @group.command("ls", short_help=f"List {kind}s")
    @click.option("-q", "--quiet", is_flag=True, help="Only display IDs")
    @click.option("-f", "--filter", "filters", multiple=True, metavar="filter", help="Filter output based on conditions provided (id, name, label)")
    @format_option
    def ls_command(quiet: bool, filters: tuple[str, ...], fmt: str) -> None:
        wanted = parse_filters(filters, FILTERS)
        objs = [o for o in calls.unwrap_list(getattr(client.stub(), calls.list)(calls.list_request())) if matches(o, wanted)]
        records = [record(kind, o) for o in objs]
        emit_list(fmt, quiet, HEADERS[kind], records, row)


def _inspect_command(group: click.Group, calls: _Calls) -> None:
    kind = calls.kind

    @group.command("inspect", short_help=f"Display detailed information on one or more {kind}s")
    @click.option("--pretty", "pretty_", is_flag=True, help="Print the information in a human friendly format")
    @inspect_format_option
    @click.argument("refs", nargs=-1, required=True, metavar=f"{kind.upper()}...")
    def inspect_command(pretty_: bool, fmt: str | None, refs: tuple[str, ...]) -> None:
        stub = client.stub()
        out, errors = [], []
        for ref in refs:
            try:
                out.append(calls.unwrap(getattr(stub, calls.get)(calls.get_request(ref))))
            except grpc.RpcError as err:
                errors.append(client.item_error(err))
        if pretty_ and not fmt:
            click.echo("\n\n".join(pretty(kind, o) for o in out))
        else:
            emit_objects(fmt, [obj_dict(kind, o) for o in out])
        if errors:
            raise click.ClickException("\n".join(errors))


def _rm_command(group: click.Group, calls: _Calls) -> None:
    kind = calls.kind

    @group.command("rm", short_help=f"Remove one or more {kind}s")
    @click.argument("refs", nargs=-1, required=True, metavar=f"{kind.upper()}...")
    def rm_command(refs: tuple[str, ...]) -> None:
        stub = client.stub()
        errors = []
        for ref in refs:
            try:
                getattr(stub, calls.remove)(calls.remove_request(ref))
                click.echo(ref)
            except grpc.RpcError as err:
                errors.append(client.item_error(err))
        if errors:
            raise click.ClickException("\n".join(errors))


secret_group = make_group("secret")
config_group = make_group("config")
