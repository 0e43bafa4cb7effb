"""``shoal svc logs``: the lines of a service's (or a task's) containers, from every node that runs them.

The manager gathers them from the nodes (see ``manager/logbroker.py``); this command asks and prints,
stdout lines to stdout and stderr lines to stderr, as docker does. ``-f`` keeps the stream open
(no deadline) until Ctrl-C; tasks that start later show up in it.
"""

from __future__ import annotations

import click
import grpc

from shoal.cli import client
from shoal.cli.logs_views import LineFormat, LogOptionError, parse_since, parse_tail
from shoal.proto import control_pb2, logs_pb2, logs_pb2_grpc


@click.command("logs")
@click.argument("ref", metavar="SERVICE|TASK")
@click.option("-f", "--follow", is_flag=True, help="Follow log output")
@click.option("-n", "--tail", default="all", show_default=True, help="Number of lines to show from the end of the logs of each task")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps")
@click.option("--since", default="", help="Show logs since a timestamp (2013-01-02T13:23:37Z) or a relative time (42m)")
@click.option("--raw", is_flag=True, help="Do not neatly format logs (no task prefix)")
@click.option("--no-task-ids", is_flag=True, help="Do not include task IDs in output")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output")
@click.option("--no-resolve", is_flag=True, help="Do not map IDs to Names in output")
@click.option("--details", is_flag=True, help="Show extra details provided to logs (shoal's logs carry none)")
def logs_command(ref: str, follow: bool, tail: str, timestamps: bool, since: str, raw: bool, no_task_ids: bool, no_trunc: bool, no_resolve: bool, details: bool) -> None:
    """Fetch the logs of a service or task"""
    try:
        request = logs_pb2.SubscribeLogsRequest(services=[ref], follow=follow, tail=parse_tail(tail), since_ns=parse_since(since))
    except LogOptionError as exc:
        raise click.UsageError(str(exc)) from None
    stub = client.stub()
    fmt = LineFormat(timestamps=timestamps, raw=raw, task_ids=not no_task_ids, trunc=not no_trunc, slot_width=_slot_width(stub, ref),
                     resolve=not no_resolve)
    tasks: dict[str, logs_pb2.LogTask] = {}
    try:
        for msg in _subscribe(stub, request):
            _print(msg, fmt, tasks)
    except KeyboardInterrupt:
        return


def _print(msg: logs_pb2.SubscribeLogsMessage, fmt: LineFormat, tasks: dict[str, logs_pb2.LogTask]) -> None:
    if msg.warning:
        click.echo(f"warning: {msg.warning}", err=True)
    for t in msg.tasks:
        tasks[t.task_id] = t
    for line in msg.lines:
        click.echo(fmt.line(tasks.get(line.task_id), line), nl=False, err=line.stream == "stderr")


def _subscribe(stub: object, request: logs_pb2.SubscribeLogsRequest):  # type: ignore[no-untyped-def]
    """The stream of messages; a test's fake stub answers ``SubscribeLogs`` itself."""
    if hasattr(stub, "SubscribeLogs"):
        return stub.SubscribeLogs(request)
    return logs_pb2_grpc.LogsStub(stub.channel).SubscribeLogs(request)  # type: ignore[attr-defined]  # the real stub exposes its channel


def _slot_width(stub: object, ref: str) -> int:
    """The width of the service's highest slot number, so the prefixes line up (1 when it is a task)."""
    try:
        svc = stub.GetService(control_pb2.GetServiceRequest(service_id=ref)).service  # type: ignore[attr-defined]
    except grpc.RpcError:
        return 1
    return len(str(max(svc.spec.replicas, 1)))
