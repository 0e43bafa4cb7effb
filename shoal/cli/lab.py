"""``shoal lab``: multi-host clusters on one machine, and faults on demand.

Each node is a host of its own (network namespace with an address on the lab bridge, its own
hostname and data dir) running the ordinary ``shoal manager`` / ``shoal worker`` command. The
commands here only parse flags and print; the work is in the ``shoal.lab`` engine (``lifecycle``:
up/down, ``faults``, ``procs``: running on a host). Every command that changes a lab holds that
lab's lock, so two of them never interleave.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable

import click

from shoal.cli.output import format_table
from shoal.lab import faults, lifecycle, procs
from shoal.lab.state import Lab, LabError, Node, all_labs, check_name, load, locked

LS_HEADERS = ("LAB", "NODE", "ROLE", "ADDRESS", "DAEMON", "ETCD", "NETWORK", "PROCESSES")


def _lab_name(ctx: click.Context, name: str | None) -> str:
    return name or (ctx.find_root().obj or {}).get("lab") or "lab"


def _fail(exc: LabError) -> None:
    raise click.ClickException(str(exc)) from None


name_option = click.option("--name", "name", default=None, help="lab name (default: the global --lab, else 'lab')")


@click.group("lab")
def lab_group() -> None:
    """Multi-host lab clusters on this machine (network-namespace hosts), and faults on demand"""


@lab_group.command("up")
@name_option
@click.option("--managers", type=int, default=1, show_default=True, help="manager hosts: 1, 3 or 5")
@click.option("--workers", type=int, default=3, show_default=True, help="worker hosts")
@click.option("--subnet", default=None, help="private IPv4 subnet for the hosts (default: a free /24 of 172.30.0.0/16)")
@click.option("--managers-run-tasks", is_flag=True, help="leave managers active instead of drained")
@click.pass_context
def up_cmd(ctx: click.Context, name: str | None, managers: int, workers: int, subnet: str | None, managers_run_tasks: bool) -> None:
    """Create a lab cluster and wait until every node is Ready"""
    name = _lab_name(ctx, name)
    t0 = time.monotonic()
    try:
        with locked(check_name(name)):
            lab = lifecycle.up(name, managers, workers, subnet, managers_run_tasks)
    except LabError as exc:
        _fail(exc)
    took = time.monotonic() - t0
    etcd = f"an etcd cluster of {managers}" if lab.etcd_cluster else "the manager's embedded etcd"
    drained = "active" if managers_run_tasks else "drained"
    click.echo(
        f"Lab {name!r} is up in {took:.1f}s: {_count(managers, 'manager')} ({drained}, {etcd}) and {_count(workers, 'worker')}\n"
        f"on {lab.subnet} ({lab.bridge_addr} on this machine, link {lab.bridge}).\n\n"
        f"{_table([lab])}\n\n"
        f"Use it:\n"
        f"    shoal --lab {name} node ls\n"
        f"    export SHOAL_HOST=unix://{lab.managers[0].socket}\n"
        f"Faults:   shoal lab kill|stop|start|partition|heal|kill-etcd|start-etcd NODE --name {name}\n"
        f"A shell:  shoal lab exec worker1 --name {name} -- sh\n"
        f"Remove:   shoal lab down --name {name}"
    )


@lab_group.command("down")
@name_option
@click.pass_context
def down_cmd(ctx: click.Context, name: str | None) -> None:
    """Remove a lab: processes, containers, namespaces, links, cgroups, mounts and data"""
    name = _lab_name(ctx, name)
    try:
        lifecycle.require_root()
        with locked(check_name(name)):
            lifecycle.down(load(name))
    except LabError as exc:
        _fail(exc)
    click.echo(f"lab {name!r} removed")


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _table(labs: list[Lab]) -> str:
    rows = [list(faults.status(lab, n).values()) for lab in labs for n in lab.nodes]
    return format_table(LS_HEADERS, rows)


@lab_group.command("ls")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", help="table or json")
def ls_cmd(fmt: str) -> None:
    """List labs and their hosts: address, role, processes"""
    labs = all_labs()
    if fmt == "json":
        click.echo(json.dumps([faults.status(lab, n) for lab in labs for n in lab.nodes], indent=2))
    else:
        click.echo(_table(labs))


@lab_group.command("exec", context_settings={"ignore_unknown_options": True})
@name_option
@click.argument("node")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def exec_cmd(ctx: click.Context, name: str | None, node: str, command: tuple[str, ...]) -> None:
    """Run COMMAND on a lab host (its network, hostname and cgroup); default: a shell"""
    try:
        lifecycle.require_root()
        target = load(_lab_name(ctx, name)).node(node)
        argv = list(command) or [os.environ.get("SHELL", "/bin/sh")]
        sys.stdout.flush()
        procs.exec_on(target, argv)
    except LabError as exc:
        _fail(exc)
    except OSError as exc:
        raise click.ClickException(f"cannot run {command[0] if command else 'a shell'} on {node}: {exc.strerror}") from None


def _fault(cmd_name: str, action: Callable[[Lab, Node], str], help_text: str) -> click.Command:
    @name_option
    @click.argument("node")
    @click.pass_context
    def run(ctx: click.Context, name: str | None, node: str) -> None:
        name = _lab_name(ctx, name)
        try:
            lifecycle.require_root()
            with locked(check_name(name)):
                lab = load(name)
                click.echo(action(lab, lab.node(node)))
        except LabError as exc:
            _fail(exc)

    run.__doc__ = help_text
    return lab_group.command(cmd_name)(run)


_fault("stop", faults.stop, "Shut a host down cleanly (SIGTERM its daemons, then end everything left)")
_fault("start", faults.start, "Boot a stopped or killed host again and wait until it is Ready")
_fault("partition", faults.partition, "Cut a host off the lab network")
_fault("heal", faults.heal, "Reconnect a partitioned host")
_fault("kill-etcd", faults.kill_etcd, "SIGKILL the etcd member on a manager host")
_fault("start-etcd", faults.start_etcd, "Start the etcd member on a manager host again")


@lab_group.command("kill")
@name_option
@click.option("--agent-only", is_flag=True, help="kill only the shoal daemon; containers keep running")
@click.argument("node")
@click.pass_context
def kill_cmd(ctx: click.Context, name: str | None, agent_only: bool, node: str) -> None:
    """Crash a host: SIGKILL everything on it (or only its shoal daemon)"""
    name = _lab_name(ctx, name)
    try:
        lifecycle.require_root()
        with locked(check_name(name)):
            lab = load(name)
            target = lab.node(node)
            click.echo(faults.kill_daemon(lab, target) if agent_only else faults.kill(lab, target))
    except LabError as exc:
        _fail(exc)
