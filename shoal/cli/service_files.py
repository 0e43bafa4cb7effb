"""``svc create --secret/--config`` and ``svc update --secret-add/-rm --config-add/-rm``.

Docker's syntax (``NAME`` or ``source=NAME,target=T,uid=U,gid=G,mode=0440``) parsed with the shared
rules (``shoal.secretspec``) before anything is sent; the manager resolves names to ids and refuses an
unknown one. Kept beside service_create/service_update so those stay one concern each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from shoal import secretspec
from shoal.cli.service_opts import FlagError
from shoal.proto import types_pb2 as pb

CREATE_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--secret", multiple=True, metavar="secret", help="Specify secrets to expose to the service (NAME or source=NAME,target=T,uid=,gid=,mode=)"),
    click.option("--config", multiple=True, metavar="config", help="Specify configurations to expose to the service (NAME or source=NAME,target=T,uid=,gid=,mode=)"),
]
UPDATE_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--secret-add", multiple=True, metavar="secret", help="Add or update a secret on a service"),
    click.option("--secret-rm", multiple=True, metavar="list", help="Remove a secret"),
    click.option("--config-add", multiple=True, metavar="config", help="Add or update a config file on a service"),
    click.option("--config-rm", multiple=True, metavar="list", help="Remove a configuration file"),
]


def _parse(kind: str, flag: str, value: str) -> tuple[str, pb.FileTarget]:
    try:
        return secretspec.parse_ref(kind, value)
    except secretspec.SecretSpecError as exc:
        raise FlagError(flag, value, str(exc)) from None


def _add(c: pb.ContainerSpec, kind: str, flag: str, values: tuple[str, ...]) -> None:
    """Add references; one for the same source and target replaces the existing one."""
    refs = c.secrets if kind == "secret" else c.configs
    for value in values:
        name, target = _parse(kind, flag, value)
        kept = [r for r in refs if not (_source(kind, r) == name and r.file.name in ("", target.name))]
        del refs[:]
        refs.extend(kept)
        if kind == "secret":
            c.secrets.add(secret_name=name, file=target)
        else:
            c.configs.add(config_name=name, file=target)


def _source(kind: str, ref: Any) -> str:
    return ref.secret_name if kind == "secret" else ref.config_name


def _remove(c: pb.ContainerSpec, kind: str, names: tuple[str, ...]) -> None:
    """Drop references by source name (or id), as docker's --secret-rm/--config-rm do: a name the service
    does not reference is ignored, as docker ignores it (a script may remove what it is unsure is there)."""
    refs = c.secrets if kind == "secret" else c.configs
    gone = set(names)
    kept = [r for r in refs if _source(kind, r) not in gone and (r.secret_id if kind == "secret" else r.config_id) not in gone]
    del refs[:]
    refs.extend(kept)


def add_refs(c: pb.ContainerSpec, o: dict[str, Any]) -> None:
    """``svc create``'s --secret and --config."""
    _add(c, "secret", "--secret", o.get("secret") or ())
    _add(c, "config", "--config", o.get("config") or ())


def update_refs(c: pb.ContainerSpec, o: dict[str, Any]) -> None:
    """``svc update``'s removals, then additions."""
    _remove(c, "secret", o.get("secret_rm") or ())
    _remove(c, "config", o.get("config_rm") or ())
    _add(c, "secret", "--secret-add", o.get("secret_add") or ())
    _add(c, "config", "--config-add", o.get("config_add") or ())
