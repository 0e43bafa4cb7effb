"""``shoal task inspect``: a task as docker's ``docker inspect TASK`` prints it (see ``docker_views``).

A task is named by its id, a unique id prefix, or the ``web.2.<id>`` name ``svc ps --no-trunc`` shows.
"""

from __future__ import annotations

import click

from shoal.cli import client
from shoal.cli.aliases import AliasGroup
from shoal.cli.docker_views import task_doc
from shoal.cli.output import emit_objects, inspect_format_option
from shoal.proto import control_pb2, types_pb2


@click.group("task", cls=AliasGroup)
def task_group() -> None:
    """Inspect tasks"""


def find_task(tasks: list[types_pb2.Task], ref: str) -> types_pb2.Task | None:
    """By full id, by ``name.slot.id`` (the id is the last part), then by unique id prefix."""
    by_id = {t.id: t for t in tasks}
    tid = ref.rsplit(".", 1)[-1]
    if tid in by_id:
        return by_id[tid]
    found = [t for t in tasks if tid and t.id.startswith(tid)]
    return found[0] if len(found) == 1 else None


@task_group.command("inspect")
@click.argument("tasks", nargs=-1, required=True, metavar="TASK...")
@inspect_format_option
def inspect_tasks(tasks: tuple[str, ...], fmt: str | None) -> None:
    """Display detailed information on one or more tasks"""
    every = list(client.stub().ListTasks(control_pb2.ListTasksRequest()).tasks)
    found, errors = [], []
    for ref in tasks:
        task = find_task(every, ref)
        if task is None:
            errors.append(f"no such task: {ref}")
        else:
            found.append(task_doc(task))
    emit_objects(fmt, found)
    if errors:
        raise click.ClickException("\n".join(errors))
