"""``shoal run``: create and start a container on this node, like ``docker run``.

Flags map onto ContainerConfig one to one; the parsing (sizes, cpus, -e, -v/--mount) is pure and
unit tested. In the foreground the container's output is streamed from its log (stdout to stdout,
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
import select
import shlex
import signal
import sys
from typing import Any

import click

from shoal import ctropts
from shoal.cli import secopts
from shoal.cli.containers_common import (
    NAME_LABEL,
    name_of,
    new_id,
    new_name,
    root_option,
    run_sync,
    sync_runtime,
)
from shoal.cli.logfollow import POLL_S, LogTail
from shoal.runtime import ConfigError, ContainerConfig, mounts, ports
from shoal.runtime.client.sync import SyncRuntime

ENV_HELP = "Set environment variables (KEY=VALUE, or KEY to copy it from this shell)"


def parse_bytes(text: str) -> int:
    """docker's RAMInBytes: 64m, 1g, 512k, 1048576 (binary units)."""
    try:
        return mounts.parse_size(text)
    except ConfigError:
        raise click.BadParameter(f"invalid size: {text!r} (e.g. 64m, 1g)") from None


def parse_cpus(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise click.BadParameter(f"invalid number of CPUs: {text!r}") from None
    if value < 0:
        raise click.BadParameter("--cpus must not be negative")
    return round(value * 1e9)


def parse_env(values: tuple[str, ...], environ: dict[str, str]) -> list[str]:
    out = []
    for v in values:
        if "=" in v:
            out.append(v)
        elif v in environ:
            out.append(f"{v}={environ[v]}")
    return out


def parse_security_opts(values: tuple[str, ...] | list[str]) -> str:
    """docker's ``--security-opt`` (see secopts.py); ConfigError naming the bad option or profile."""
    try:
        return secopts.parse(values)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def parse_process_options(o: dict[str, Any]) -> dict[str, Any]:
    """``--ulimit``, ``--sysctl``, ``--group-add``, ``--stop-signal`` with the core's rules (shoal.ctropts)."""
    try:
        ulimits = [dict(zip(("name", "soft", "hard"), ctropts.parse_ulimit(u), strict=True)) for u in o.get("ulimit") or ()]
        sysctls = dict(ctropts.parse_sysctl(s) for s in o.get("sysctl") or ())
        if o.get("stop_signal"):
            ctropts.signal_number(o["stop_signal"])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return {"ulimits": ulimits, "sysctls": sysctls, "group_add": list(o.get("group_add") or ()),
            "stop_signal": o.get("stop_signal") or ""}


def build_config(
    image: str, command: tuple[str, ...], o: dict[str, Any], cid: str, name: str, environ: dict[str, str]
) -> ContainerConfig:
    """The ContainerConfig for ``shoal run`` flags (pure)."""
    entrypoint = None if o.get("entrypoint") is None else (shlex.split(o["entrypoint"]) or [""])
    mount_list = [mounts.parse_mount(m) for m in o.get("mount") or ()]
    mount_list += [mounts.parse_volume(v) for v in o.get("volume") or ()]
    mount_list += [mounts.parse_mount(f"type=tmpfs,target={t}") for t in o.get("tmpfs") or ()]
    return ContainerConfig(
        id=cid,
        image=image,
        args=list(command),
        entrypoint=entrypoint,
        env=parse_env(o.get("env") or (), environ),
        workdir=o.get("workdir") or "",
        user=o.get("user") or "",
        hostname=o.get("hostname") or "",
        memory_bytes=parse_bytes(o["memory"]) if o.get("memory") else 0,
        nano_cpus=parse_cpus(o["cpus"]) if o.get("cpus") else 0,
        pids_limit=max(0, o.get("pids_limit") or 0),
        cpu_shares=o.get("cpu_shares") or 0,
        cap_add=list(o.get("cap_add") or ()),
        cap_drop=list(o.get("cap_drop") or ()),
        init=bool(o.get("init")),
        userns=bool(o.get("userns")),
        mounts=mount_list,
        stop_grace_s=float(o.get("stop_timeout") if o.get("stop_timeout") is not None else 10),
        seccomp=parse_security_opts(o.get("security_opt") or ()),
        read_only=bool(o.get("read_only")),
        **parse_process_options(o),
        labels={NAME_LABEL: name, **dict(kv.partition("=")[::2] for kv in o.get("label") or ())},
        publish=[entry for flag in o.get("publish") or () for entry in ports.parse(flag)],
    )


@click.command(
    "run",
    context_settings={"allow_interspersed_args": False, "help_option_names": ["--help"]},
    short_help="Create and run a new container",
)
@click.option("--rm", "remove", is_flag=True, help="Remove the container when it exits")
@click.option("-d", "--detach", is_flag=True, help="Run in the background and print the container ID")
@click.option("--name", default=None, help="Assign a name to the container")
@click.option("-e", "--env", multiple=True, help=ENV_HELP)
@click.option("-m", "--memory", default=None, help="Memory limit (e.g. 64m)")
@click.option("--cpus", default=None, help="Number of CPUs (e.g. 0.5)")
@click.option("--cpu-shares", type=int, default=0, help="CPU shares (relative weight)")
@click.option("--pids-limit", type=int, default=0, help="Tune container pids limit")
@click.option("-h", "--hostname", default=None, help="Container host name")
@click.option(
    "--init", is_flag=True, help="Run an init inside the container that forwards signals and reaps processes"
)
@click.option(
    "--userns", is_flag=True, help="Remap root in the container to host uid 100000.. (needs an image)"
)
@click.option("--entrypoint", default=None, help="Overwrite the default ENTRYPOINT of the image")
@click.option("-u", "--user", default=None, help="Username or UID (format: <name|uid>[:<group|gid>])")
@click.option("-w", "--workdir", default=None, help="Working directory inside the container")
@click.option(
    "--mount",
    multiple=True,
    help="Attach a filesystem mount (type=bind|volume|tmpfs,src=..,dst=..[,readonly])",
)
@click.option("-v", "--volume", multiple=True, help="Bind mount a host path or a named volume (SRC:DST[:ro])")
@click.option("--tmpfs", multiple=True, help="Mount a tmpfs directory")
@click.option("--read-only", is_flag=True, help="Mount the container's root filesystem as read only")
@click.option("--ulimit", multiple=True, help="Ulimit options (NAME=SOFT[:HARD])")
@click.option("--sysctl", multiple=True, help="Sysctl options (namespaced ones: net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*)")
@click.option("--group-add", multiple=True, help="Add additional groups to join")
@click.option("--stop-signal", default=None, help="Signal to stop the container")
@click.option("--cap-add", multiple=True, help="Add Linux capabilities")
@click.option("--cap-drop", multiple=True, help="Drop Linux capabilities")
@click.option("--security-opt", multiple=True, help="Security options (seccomp=unconfined|PROFILE.json)")
@click.option("--stop-timeout", type=float, default=None, help="Seconds to wait after SIGTERM before SIGKILL")
@click.option("-l", "--label", multiple=True, help="Set metadata (KEY=VALUE)")
@click.option("--network", default=None, metavar="NAME",
              help="Connect the container to an attachable cluster network (through this node's agent)")
@click.option("-p", "--publish", multiple=True, metavar="[IP:]HOST:CONTAINER[/PROTO]",
              help="Publish a container's port to the host (e.g. 8080:80, 127.0.0.1:5353:53/udp)")
@root_option
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@run_sync
def run_command(
    image: str, command: tuple[str, ...], remove: bool, detach: bool, name: str | None, root: str, **o: Any
) -> None:
    """Create and run a new container from IMAGE (`host` or an image loaded with `shoal image load`)."""
    try:
        keys = ("mount", "volume", "tmpfs", "security_opt", "publish", "ulimit", "sysctl", "stop_signal")
        mount_opts = {k: o.get(k) for k in keys}
        build_config(image, (), {**mount_opts}, "probe", "probe", {})  # flag syntax errors before any work
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None
    network = o.pop("network", None)
    if network is not None and o.get("publish"):
        raise click.BadParameter("-p publishes on this host's standalone bridge: not with --network (publish "
                                 "through a service: shoal svc create -p)", param_hint="'--network'")
    with sync_runtime(root) as rt:
        taken = {name_of(c) for c in rt.list()}
        if name is not None and name in taken:
            raise click.ClickException(f'Conflict. The container name "{name}" is already in use')
        name = name or new_name(taken)
        cfg = build_config(image, command, o, new_id(), name, dict(os.environ))
        joined = _join_network(cfg, network) if network is not None else None
        try:
            info = rt.create(cfg)
            try:
                rt.start(info.id)
            except BaseException:
                if remove:
                    rt.delete(info.id, force=True)
                raise
            if joined is not None:
                _agent({"op": "started", "attachment": joined})
        except BaseException:
            if joined is not None:
                _leave_network(joined)
            raise
        if detach:
            click.echo(info.id)
            return
        code = _attach(rt, info.id, info.log_path)
        if remove:
            rt.delete(info.id, force=True)
        if joined is not None:
            _leave_network(joined)
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


def _attach(rt: SyncRuntime, cid: str, log_path: str) -> int:
    """Print the log until the container exits; Ctrl-C becomes SIGINT to the container.

    The exit arrives as the reply on a ``wait`` connection: the log is read whenever that reply has not
    come within POLL_S, and once more after it, so a short container costs no poll interval at all.
    """
    tail = LogTail(log_path)
    conn = rt.begin_wait(cid)
    previous = signal.signal(signal.SIGINT, lambda *_: _signal(rt, cid, signal.SIGINT))
    try:
        while not select.select([conn], [], [], POLL_S)[0]:
            tail.pump()
        info = rt.end_wait(conn)
    finally:
        signal.signal(signal.SIGINT, previous)
        conn.close()
    tail.pump()
    if info.oom_killed:
        click.echo("container was OOM-killed", err=True)
    return info.exit_code if info.exit_code is not None else 255


def _signal(rt: SyncRuntime, cid: str, sig: int) -> None:
    try:
        rt.kill(cid, sig, fresh=True)  # the session may be mid-call: a connection of its own
    except Exception:  # noqa: BLE001 - it may have exited meanwhile
        pass
