"""A click group that also answers to alternative command names (``svc`` for ``service``, ``list``).

Aliases resolve to the real command but stay out of ``--help``, as docker's cobra aliases do. Commands
given as ``lazy={"name": "module:attribute"}`` are imported only when they run (or ``--help`` lists
them): ``svc ls`` does not pay for the modules of ``svc create``.
"""

from __future__ import annotations

import importlib
from typing import Any

import click


class AliasGroup(click.Group):
    """``click.Group`` with ``aliases={"alias": "real-name"}``."""

    def __init__(self, *args: Any, aliases: dict[str, str] | None = None, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.aliases: dict[str, str] = dict(aliases or {})
        self.lazy: dict[str, str] = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        name = self.aliases.get(cmd_name, cmd_name)
        if name not in self.commands and name in self.lazy:
            module, attr = self.lazy[name].split(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        # report the real name, so usage lines and errors say "service", not "svc"
        _, cmd, rest = super().resolve_command(ctx, args)
        if cmd is not None:
            from shoal.cli import boolflags

            rest = boolflags.rewrite(cmd, rest)  # docker's --detach=false
        return (cmd.name if cmd else None), cmd, rest
