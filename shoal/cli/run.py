"""``shoal run``: create and start a container on this node, like ``docker run``.

The flags are declared once, in runflags.py (which also maps them onto ContainerConfig, purely), and
the run itself is runcontainer.py's: this module is the click command around them, plus ``--network``.
The ``shoal`` executable answers a plain ``shoal run`` without loading click at all (fastrun.py), with
the same table and the same run. In the foreground the container's output is streamed from its log (stdout to stdout,
stderr to stderr) and ``shoal run`` exits with the container's exit code; Ctrl-C is passed on as
SIGINT. ``-d`` prints the id and returns. ``--rm`` deletes the container once it has exited.
``-p HOST:CONTAINER`` publishes a port on this host as docker does (the launcher wires the container
to shoal's standalone bridge and forwards the port while it runs; see runtime/launcher/hostnet.py).
``--network NAME`` on a cluster node joins an ``--attachable`` cluster network, as ``docker run
--network`` does on a swarm node: the node's agent gets the container an address from the managers and
wires a namespace for it (see shoal/agentapi.py); the container reaches the network's services by
VIP, task address and name, and its address is released when it ends.
Interactive terminals (``-i``/``-t``) are not supported by ``run``; use ``shoal exec -i``.

``run`` talks to the launcher with the blocking client (SyncRuntime): a command that starts one
container and waits for it has no use for an event loop, and not importing asyncio is a good part of
what keeps ``shoal run --rm IMAGE true`` under 100 ms (bench/cli_latency.py). Only ``--network``
loads asyncio, for the agent's API (shoal/agentapi.py).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from shoal.cli import runflags
from shoal.cli.containers_common import NAME_LABEL, root_option, run_sync, sync_runtime
from shoal.cli.runcontainer import Network, Refused, run_here
from shoal.cli.runflags import (  # noqa: F401  (re-exported)
    ENV_HELP,
    RUN_FLAGS,
    BadValue,
    parse_env,
    parse_process_options,
    parse_security_opts,
)
from shoal.runtime import ConfigError, ContainerConfig


def parse_bytes(text: str) -> int:
    """docker's RAMInBytes: 64m, 1g, 512k, 1048576 (binary units)."""
    try:
        return runflags.size_bytes(text)
    except BadValue as exc:
        raise click.BadParameter(str(exc)) from None


def parse_cpus(text: str) -> int:
    try:
        return runflags.nano_cpus(text)
    except BadValue as exc:
        raise click.BadParameter(str(exc)) from None


def build_config(
    image: str, command: tuple[str, ...], o: dict[str, Any], cid: str, name: str, environ: dict[str, str]
) -> ContainerConfig:
    """The ContainerConfig for ``shoal run`` flags (runflags.build_config; a bad size or cpus is click's BadParameter)."""
    try:
        return runflags.build_config(image, command, o, cid, name, environ)
    except BadValue as exc:
        raise click.BadParameter(str(exc)) from None


def run_flags(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``run``'s options from the one table of them (runflags.RUN_FLAGS), in its order."""
    for opt, kw in reversed(RUN_FLAGS):
        fn = click.option(*opt.names, opt.dest, is_flag=opt.kind == runflags.FLAG, multiple=opt.kind == runflags.MULTIPLE,
                          type=opt.convert, **kw)(fn)
    return fn


@click.command(
    "run",
    context_settings={"allow_interspersed_args": False, "help_option_names": ["--help"]},
    short_help="Create and run a new container",
)
@run_flags
@root_option
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@run_sync
def run_command(
    image: str, command: tuple[str, ...], remove: bool, detach: bool, name: str | None, root: str, **o: Any
) -> None:
    """Create and run a new container from IMAGE (`host` or an image loaded with `shoal image load`)."""
    try:
        runflags.probe_config(image, o)  # flag syntax errors before any work
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None
    network = o.pop("network", None)
    if network is not None and o.get("publish"):
        raise click.BadParameter("-p publishes on this host's standalone bridge: not with --network (publish "
                                 "through a service: shoal svc create -p)", param_hint="'--network'")
    hooks = None
    if network is not None:
        hooks = Network(lambda cfg: _join_network(cfg, network), lambda att: _agent({"op": "started", "attachment": att}),
                        _leave_network)
    with sync_runtime(root) as rt:
        try:
            code = run_here(rt, image, command, o, name, remove, detach, dict(os.environ), hooks)
        except Refused as exc:
            raise click.ClickException(str(exc)) from None
        except BadValue as exc:
            raise click.BadParameter(str(exc)) from None
    sys.exit(code)


def _agent(request: dict[str, Any]) -> dict[str, Any]:
    """One call to this node's agent (shoal/agentapi.py: asyncio, loaded only by ``--network``)."""
    import asyncio

    from shoal import agentapi

    try:
        return asyncio.run(agentapi.call(request))
    except agentapi.AgentApiError as exc:  # the agent's refusal (or its absence) is the command's error
        raise click.ClickException(str(exc)) from None


def _join_network(cfg: ContainerConfig, network: str) -> str:
    """Attach the container-to-be to ``network`` through this node's agent; returns the attachment id."""
    att = _agent({"op": "attach", "network": network, "container_id": cfg.id,
                  "container_name": cfg.labels.get(NAME_LABEL, "")})
    cfg.netns_path = att["netns"]
    cfg.mounts.append({"type": "bind", "source": att["resolv_conf"], "target": "/etc/resolv.conf", "readonly": True})
    return str(att["attachment"])


def _leave_network(attachment: str) -> None:
    """Give the attachment back now (else the agent does once the container's namespace is empty)."""
    try:
        _agent({"op": "detach", "attachment": attachment})
    except click.ClickException as exc:
        click.echo(f"warning: the network address is released later: {exc.message}", err=True)
