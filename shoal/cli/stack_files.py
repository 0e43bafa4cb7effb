"""A stack's secrets and configs: created (``NAME_key``, labelled with the stack) on deploy, removed on rm.

Every one is checked before anything is created: an external one must exist, and the data of each one
to create (``file:``, ``environment:``, a config's ``content:``) must be readable and within docker's
size limit; otherwise the deploy stops with nothing deployed. One that exists already is left as it is
(secrets and configs are immutable, as in docker: rename it in the file to change it). ``stack rm``
removes the ones labelled with the stack, after its services.
"""

from __future__ import annotations

import os

import click
import grpc

from shoal import secretspec
from shoal.cli import client
from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb
from shoal.stack import NAMESPACE_LABEL
from shoal.stack.objects import ObjectPlan, StackPlan

KINDS = ("secret", "config")


def existing(stub: object | None = None) -> dict[str, dict[str, str]]:
    """The cluster's secrets and configs: kind -> name -> id."""
    s = stub or client.stub()
    secrets = s.ListSecrets(cpb.ListSecretsRequest()).secrets  # type: ignore[attr-defined]  # a control stub (or a test fake): typed object
    configs = s.ListConfigs(cpb.ListConfigsRequest()).configs  # type: ignore[attr-defined]  # as above
    return {"secret": {o.spec.name: o.id for o in secrets}, "config": {o.spec.name: o.id for o in configs}}


def _data(obj: ObjectPlan) -> bytes:
    if obj.file:
        try:
            with open(obj.file, "rb") as f:
                data = f.read(secretspec.MAX_SIZE + 1)
        except OSError as exc:
            raise click.ClickException(f"{obj.kind} {obj.name}: cannot read {obj.file}: {exc.strerror}; nothing was deployed") from None
    elif obj.environment:
        if obj.environment not in os.environ:
            raise click.ClickException(f"{obj.kind} {obj.name}: environment variable {obj.environment} is not set; nothing was deployed")
        data = os.environ[obj.environment].encode()
    else:
        data = (obj.content or "").encode()
    try:
        secretspec.check_data(obj.kind, data)
    except secretspec.SecretSpecError as exc:
        raise click.ClickException(f"{obj.kind} {obj.name}: {exc}; nothing was deployed") from None
    return data


def prepare(stack: StackPlan, have: dict[str, dict[str, str]]) -> list[tuple[ObjectPlan, bytes]]:
    """What to create, with its data; ClickException (nothing deployed) for a missing external one or bad data."""
    todo = []
    for kind in KINDS:
        for obj in stack.of_kind(kind):
            if obj.external:
                if obj.name not in have[kind]:
                    raise click.ClickException(f"{kind} {obj.name} is declared as external, but could not be found: create it first (nothing was deployed)")
            elif obj.name not in have[kind]:
                todo.append((obj, _data(obj)))
    return todo


def create(todo: list[tuple[ObjectPlan, bytes]]) -> None:
    stub = client.stub()
    for obj, data in todo:
        click.echo(f"Creating {obj.kind} {obj.name}")
        labels = dict(obj.labels)
        if obj.kind == "secret":
            stub.CreateSecret(cpb.CreateSecretRequest(spec=pb.SecretSpec(name=obj.name, labels=labels, data=data)))
        else:
            stub.CreateConfig(cpb.CreateConfigRequest(spec=pb.ConfigSpec(name=obj.name, labels=labels, data=data)))


def labelled(namespace: str) -> list[tuple[str, pb.Secret | pb.Config]]:
    """The secrets and configs of stack ``namespace`` (by label), secrets first."""
    stub = client.stub()
    out: list[tuple[str, pb.Secret | pb.Config]] = []
    out += [("secret", s) for s in stub.ListSecrets(cpb.ListSecretsRequest()).secrets if s.spec.labels.get(NAMESPACE_LABEL) == namespace]
    out += [("config", c) for c in stub.ListConfigs(cpb.ListConfigsRequest()).configs if c.spec.labels.get(NAMESPACE_LABEL) == namespace]
    return sorted(out, key=lambda ko: (ko[0] != "secret", ko[1].spec.name))


def remove(objs: list[tuple[str, pb.Secret | pb.Config]]) -> bool:
    """Remove the stack's secrets and configs; True when one could not be removed."""
    stub = client.stub()
    failed = False
    for kind, obj in objs:
        click.echo(f"Removing {kind} {obj.spec.name}")
        try:
            if kind == "secret":
                stub.RemoveSecret(cpb.RemoveSecretRequest(secret_id=obj.id))
            else:
                stub.RemoveConfig(cpb.RemoveConfigRequest(config_id=obj.id))
        except grpc.RpcError as err:
            click.echo(f"Failed to remove {kind} {obj.spec.name}: {client.item_error(err)}", err=True)
            failed = True
    return failed
