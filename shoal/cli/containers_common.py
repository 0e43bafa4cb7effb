"""What the node-local container commands share: the runtime they talk to, names, errors, times.

``shoal run``, ``ps``, ``exec``, ``image`` ... work without a cluster, like ``docker`` against the
local daemon: they use the runtime state dir ``--root`` (default /var/lib/shoal/local, env
SHOAL_ROOT), whose launcher they start on demand and which keeps running while containers do.
Containers get a 64-hex id and a name (``--name`` or a generated one, kept in the label
``shoal.name``); every command accepts the name, the id, or a unique id prefix.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from shoal.cli import local
from shoal.cli.local import (  # noqa: F401  (re-exported: the click-free half, see local.py)
    _ADJ,
    _NOUN,
    DEFAULT_ROOT,
    LAUNCHER_LINGER_S,
    NAME_LABEL,
    _below,
    name_of,
    new_id,
    new_name,
)
from shoal.cli.localonly import refuse_if_remote
from shoal.runtime import ContainerError, ContainerInfo, ContainerNotFound

if TYPE_CHECKING:
    from shoal.runtime import Runtime
    from shoal.runtime.client.sync import SyncRuntime

CGROUP_PARENT = local.CGROUP_PARENT  # tests set their own here
T = TypeVar("T")


def _local_only(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Every command with --root acts on this machine: refuse it under --lab/-H (see localonly).

    ``image`` subcommands decide in their body (with --cluster they do reach the cluster)."""
    parent = ctx.parent.info_name if ctx.parent is not None and ctx.parent.parent is not None else ""
    if parent != "image" and not ctx.resilient_parsing:
        refuse_if_remote(ctx, parent or ctx.info_name or "")
    return value


root_option = click.option(
    "--root",
    envvar="SHOAL_ROOT",
    default=DEFAULT_ROOT,
    show_default=True,
    callback=_local_only,
    help="Node-local runtime state dir (env SHOAL_ROOT)",
)


def runtime(root: str) -> Runtime:
    """The asyncio client of this node's runtime (the commands that stream or run several calls at once)."""
    from shoal.runtime.client.runtime import Runtime

    return Runtime(root, cgroup_parent=CGROUP_PARENT, linger_s=local.linger())


def sync_runtime(root: str) -> SyncRuntime:
    """The blocking client of the same runtime (``shoal run``: no event loop, no asyncio to import)."""
    return local.sync_runtime(root, CGROUP_PARENT)


def run_sync(fn: Callable[..., T]) -> Callable[..., T]:
    """A click callback that needs root; runtime errors become ``Error: <message>``, exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        if os.geteuid() != 0:
            raise click.ClickException("containers need root (namespaces, mounts, cgroups): run as root")
        try:
            return fn(*args, **kwargs)
        except ContainerError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def run_async(fn: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    """A click callback from a coroutine (run_sync's rules)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        import asyncio

        return run_sync(lambda: asyncio.run(fn(*args, **kwargs)))()

    return wrapper


def find(containers: list[ContainerInfo], ref: str) -> ContainerInfo:
    """By name, full id, or unique id prefix (docker's lookup order)."""
    for c in containers:
        if name_of(c) == ref or c.id == ref:
            return c
    matches = [c for c in containers if ref and c.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ContainerError(f"multiple containers match id prefix {ref}")
    raise ContainerNotFound(f"No such container: {ref}")


async def resolve(rt: Runtime, ref: str) -> ContainerInfo:
    return find(await rt.list(), ref)


def status_text(info: ContainerInfo, now: float | None = None) -> str:
    """docker's STATUS column: "Up 5 seconds", "Exited (0) 2 minutes ago", "Created"."""
    from shoal.cli.output import human_duration

    now = time.time() if now is None else now
    if info.status == "running" and info.started_at:
        return f"Up {human_duration(now - info.started_at)}"
    if info.status == "exited":
        code = "?" if info.exit_code is None else info.exit_code
        when = human_duration(now - (info.finished_at or now)).lower()
        return f"Exited ({code}) {when} ago"
    return "Created"


def ago_text(ts: float, now: float | None = None) -> str:
    from shoal.cli.output import human_duration

    now = time.time() if now is None else now
    return human_duration(max(0.0, now - ts)) + " ago"


def size_text(n: float) -> str:
    """docker's HumanSize (decimal units, 3 significant digits): 4.05MB, 1.98MB, 512B."""
    units = ["B", "kB", "MB", "GB", "TB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000
        i += 1
    return f"{n:.3g}{units[i]}"


def bytes_text(n: float) -> str:
    """docker stats' BytesSize (binary units): 1.5MiB / 64MiB."""
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n /= 1024
        i += 1
    return f"{n:.4g}{units[i]}"
