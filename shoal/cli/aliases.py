"""A click group that also answers to alternative command names (``svc`` for ``service``, ``list``).

Aliases resolve to the real command but stay out of ``--help``, as docker's cobra aliases do.
"""

from __future__ import annotations

from typing import Any

import click


class AliasGroup(click.Group):
    """``click.Group`` with ``aliases={"alias": "real-name"}``."""

    def __init__(self, *args: Any, aliases: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.aliases: dict[str, str] = dict(aliases or {})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.aliases.get(cmd_name, cmd_name))

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        # report the real name, so usage lines and errors say "service", not "svc"
        _, cmd, rest = super().resolve_command(ctx, args)
        return (cmd.name if cmd else None), cmd, rest
