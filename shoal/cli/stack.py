"""``shoal stack``: deploy a compose file as a set of services, list, inspect and remove stacks.

Thin commands over ``shoal.stack``: the stack is loaded and checked completely before anything is
sent, every problem is printed as ``file:line:column: key.path: message`` and the command exits 1
with nothing deployed.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from shoal.stack.errors import StackError
from shoal.stack.loader import Stack, load_stack
from shoal.stack.render import render_config

COMPOSE_FILE_HELP = "Path to a Compose file, or - to read from stdin (repeat to merge files, later ones win)"


def load_or_exit(files: Sequence[str]) -> Stack:
    """The loaded stack; on problems print them all to stderr and exit 1. Warnings go to stderr."""
    if not files:
        raise click.UsageError("please specify at least one compose file (-c/--compose-file)")
    try:
        stack = load_stack(files)
    except StackError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        n = len(exc.problems)
        raise click.ClickException(f"the stack has {n} problem{'s' if n != 1 else ''}; nothing was deployed") from None
    for warning in stack.warnings:
        click.echo(warning, err=True)
    return stack


@click.group("stack")
def stack_group() -> None:
    """Manage stacks"""


@stack_group.command("config")
@click.option("-c", "--compose-file", "files", multiple=True, metavar="strings", help=COMPOSE_FILE_HELP)
def config_command(files: tuple[str, ...]) -> None:
    """Outputs the final config file, after doing merges and interpolations"""
    stack = load_or_exit(files)
    click.echo(render_config(stack.compose), nl=False)
