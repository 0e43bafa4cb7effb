"""``shoal ps|stop|kill|rm|exec|logs|stats``: the node-local container commands, as docker's.

``exec -i`` streams this terminal's stdin to the command; there is no pseudo-terminal (``-t``):
stdout and stderr arrive combined. ``logs -f`` follows until the container exits.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator

import click

from shoal.cli.containers_common import (
    ago_text,
    bytes_text,
    name_of,
    resolve,
    root_option,
    run_async,
    runtime,
    status_text,
)
from shoal.cli.logfollow import emit, follow
from shoal.cli.output import format_table
from shoal.runtime import ContainerError, logs


@click.command("ps", short_help="List containers")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers (default shows just running)")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@root_option
@run_async
async def ps_command(show_all: bool, quiet: bool, no_trunc: bool, root: str) -> None:
    """List the containers of this node (running ones unless -a)."""
    async with runtime(root) as rt:
        found = [c for c in await rt.list() if show_all or c.status == "running"]
    found.sort(key=lambda c: c.created_at, reverse=True)
    if quiet:
        for c in found:
            click.echo(c.id if no_trunc else c.id[:12])
        return
    now = time.time()
    rows = []
    for c in found:
        cmd = " ".join(c.command)
        cmd = cmd if no_trunc or len(cmd) <= 20 else cmd[:19] + "…"
        rows.append([c.id if no_trunc else c.id[:12], c.image, f'"{cmd}"', ago_text(c.created_at, now), status_text(c, now), ", ".join(c.ports), name_of(c)])
    click.echo(format_table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], rows))


@click.command("stop", short_help="Stop one or more running containers")
@click.option("-t", "--time", "grace", type=float, default=None, help="Seconds to wait before killing it")
@click.argument("containers", nargs=-1, required=True)
@root_option
@run_async
async def stop_command(containers: tuple[str, ...], grace: float | None, root: str) -> None:
    """SIGTERM, then SIGKILL after the grace period."""
    async with runtime(root) as rt:
        await _each(containers, lambda ref: _stop(rt, ref, grace))


async def _stop(rt, ref: str, grace: float | None) -> None:  # type: ignore[no-untyped-def]  # rt: the runtime client (untyped parameter)
    await rt.stop((await resolve(rt, ref)).id, grace)


@click.command("kill", short_help="Kill one or more running containers")
@click.option("-s", "--signal", "sig", default="KILL", help="Signal to send")
@click.argument("containers", nargs=-1, required=True)
@root_option
@run_async
async def kill_command(containers: tuple[str, ...], sig: str, root: str) -> None:
    """Send a signal (default SIGKILL) to the container's main process."""
    signum = _signal_number(sig)
    async with runtime(root) as rt:

        async def one(ref: str) -> None:
            info = await resolve(rt, ref)
            if info.status != "running":
                raise ContainerError(f"cannot kill container {ref}: container is not running")
            await rt.kill(info.id, signum)

        await _each(containers, one)


def _signal_number(text: str) -> int:
    name = text.upper()
    if name.isdigit():
        return int(name)
    try:
        return int(signal.Signals(name if name.startswith("SIG") else f"SIG{name}"))
    except ValueError:
        raise click.BadParameter(f"invalid signal: {text}") from None


@click.command("rm", short_help="Remove one or more containers")
@click.option("-f", "--force", is_flag=True, help="Force the removal of a running container (uses SIGKILL)")
@click.argument("containers", nargs=-1, required=True)
@root_option
@run_async
async def rm_command(containers: tuple[str, ...], force: bool, root: str) -> None:
    """Remove containers (a running one only with -f)."""
    async with runtime(root) as rt:

        async def one(ref: str) -> None:
            info = await resolve(rt, ref)
            if info.status == "running" and not force:
                raise ContainerError(f"cannot remove container {ref}: container is running: stop the container before removing or force remove")
            await rt.delete(info.id, force=force)

        await _each(containers, one)


async def _each(refs: tuple[str, ...], action) -> None:  # type: ignore[no-untyped-def]  # action: the per-container coroutine function (untyped)
    """Run ``action`` per container, echo each ref that worked, report failures at the end."""
    errors = []
    for ref in refs:
        try:
            await action(ref)
            click.echo(ref)
        except ContainerError as exc:
            errors.append(str(exc))
    if errors:
        raise click.ClickException("\n".join(errors))


@click.command("exec", context_settings={"allow_interspersed_args": False}, short_help="Execute a command in a running container")
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open and send it to the command")
@click.option("-e", "--env", multiple=True, help="Set environment variables")
@click.option("--timeout", type=float, default=None, help="Kill the command after this many seconds")
@root_option
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@run_async
async def exec_command(container: str, command: tuple[str, ...], interactive: bool, env: tuple[str, ...], timeout: float | None, root: str) -> None:
    """Run COMMAND inside CONTAINER (its namespaces, cgroup, user and capabilities)."""
    async with runtime(root) as rt:
        info = await resolve(rt, container)
        out = sys.stdout.buffer

        def write(data: bytes) -> None:
            out.write(data)
            out.flush()

        stdin = _stdin_chunks() if interactive else None
        res = await rt.exec_stream(info.id, list(command), write, timeout=timeout, env=list(env), stdin=stdin)
    if res.timed_out:
        click.echo(f"exec timed out after {timeout}s", err=True)
    sys.exit(125 if res.timed_out else res.exit_code)


async def _stdin_chunks() -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    while True:
        data = await loop.run_in_executor(None, lambda: sys.stdin.buffer.read1(65536))
        if not data:
            return
        yield data


@click.command("logs", short_help="Fetch the logs of a container")
@click.option("-f", "--follow", "follow_", is_flag=True, help="Follow log output")
@click.option("-n", "--tail", default="all", help="Number of lines to show from the end of the logs")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps")
@root_option
@click.argument("container")
@run_async
async def logs_command(container: str, follow_: bool, tail: str, timestamps: bool, root: str) -> None:
    """Print a container's stdout (to stdout) and stderr (to stderr), oldest first."""
    if tail != "all" and not tail.isdigit():
        raise click.BadParameter(f"--tail must be a number or 'all', got {tail!r}")
    async with runtime(root) as rt:
        info = await resolve(rt, container)
        records = list(logs.records(info.log_path))
        shown = records if tail == "all" else records[len(records) - min(int(tail), len(records)) :]
        if not follow_:
            for rec in shown:
                emit(rec, timestamps)
            return
        for rec in shown:
            emit(rec, timestamps)
        waiter = asyncio.ensure_future(rt.wait(info.id))
        # follow the current file from what was already printed on
        await follow(info.log_path, waiter.done, timestamps, skip=_in_current_file(info.log_path))
        await waiter


def _in_current_file(path: str) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if logs.parse(line) is not None)
    except FileNotFoundError:
        return 0


@click.command("stats", short_help="Display a live stream of container(s) resource usage statistics")
@click.option("--no-stream", is_flag=True, help="Print one result and exit")
@root_option
@click.argument("containers", nargs=-1)
@run_async
async def stats_command(containers: tuple[str, ...], no_stream: bool, root: str) -> None:
    """CPU %, memory usage / limit, memory peak and pids of running containers."""
    async with runtime(root) as rt:
        while True:
            infos = [await resolve(rt, ref) for ref in containers] if containers else await rt.list()
            infos = [i for i in infos if i.status == "running"]
            first = {i.id: await _sample(rt, i.id) for i in infos}
            t0 = time.monotonic()
            await asyncio.sleep(0.5)
            rows = []
            for i in infos:
                try:
                    st = await rt.stats(i.id)
                except ContainerError:
                    continue
                cpu = (st.cpu_seconds - first[i.id]) / (time.monotonic() - t0) * 100 if first[i.id] is not None else 0.0
                limit = st.memory_limit_bytes
                mem_pct = f"{st.memory_bytes / limit * 100:.2f}%" if limit else "--"
                limit_text = bytes_text(limit) if limit else "unlimited"
                rows.append([i.id[:12], name_of(i), f"{cpu:.2f}%", f"{bytes_text(st.memory_bytes)} / {limit_text}", mem_pct, bytes_text(st.memory_peak_bytes), str(st.pids)])
            table = format_table(["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "MEM PEAK", "PIDS"], rows)
            if no_stream:
                click.echo(table)
                return
            click.echo("\x1b[2J\x1b[H" + table)


async def _sample(rt, cid: str) -> float | None:  # type: ignore[no-untyped-def]  # rt: the runtime client (untyped parameter)
    try:
        return (await rt.stats(cid)).cpu_seconds
    except ContainerError:
        return None
