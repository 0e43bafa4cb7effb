"""``shoal run``'s flags and how they become a ContainerConfig, without click.

The flags are declared once, here: run.py turns the table into click options (help, usage errors),
and the fast ``shoal run`` (fastrun.py) parses the same table without click (fastargs.py), so the two
cannot accept different command lines. Flags map onto ContainerConfig one to one; the parsing (sizes,
cpus, -e, -v/--mount, ulimits, sysctls, security options) is pure and unit tested. A value that cannot
be used raises ConfigError or BadValue naming it (run.py shows both as click's "Invalid value").
"""

from __future__ import annotations

from typing import Any

from shoal import ctropts, units
from shoal.cli import secopts
from shoal.cli.fastargs import FLAG, MULTIPLE, Opt
from shoal.cli.local import NAME_LABEL
from shoal.runtime import ConfigError, ContainerConfig, mounts, ports

ENV_HELP = "Set environment variables (KEY=VALUE, or KEY to copy it from this shell)"

# (the option, click.option's other keywords), in --help's order; --root (containers_common) follows them
RUN_FLAGS: tuple[tuple[Opt, dict[str, Any]], ...] = (
    (Opt("remove", ("--rm",), FLAG), {"help": "Remove the container when it exits"}),
    (Opt("detach", ("-d", "--detach"), FLAG), {"help": "Run in the background and print the container ID"}),
    (Opt("name", ("--name",)), {"help": "Assign a name to the container"}),
    (Opt("env", ("-e", "--env"), MULTIPLE), {"help": ENV_HELP}),
    (Opt("memory", ("-m", "--memory")), {"help": "Memory limit (e.g. 64m)"}),
    (Opt("cpus", ("--cpus",)), {"help": "Number of CPUs (e.g. 0.5)"}),
    (Opt("cpu_shares", ("--cpu-shares",), convert=int), {"default": 0, "help": "CPU shares (relative weight)"}),
    (Opt("pids_limit", ("--pids-limit",), convert=int), {"default": 0, "help": "Tune container pids limit"}),
    (Opt("hostname", ("-h", "--hostname")), {"help": "Container host name"}),
    (Opt("init", ("--init",), FLAG), {"help": "Run an init inside the container that forwards signals and reaps processes"}),
    (Opt("userns", ("--userns",), FLAG), {"help": "Remap root in the container to host uid 100000.. (needs an image)"}),
    (Opt("entrypoint", ("--entrypoint",)), {"help": "Overwrite the default ENTRYPOINT of the image"}),
    (Opt("user", ("-u", "--user")), {"help": "Username or UID (format: <name|uid>[:<group|gid>])"}),
    (Opt("workdir", ("-w", "--workdir")), {"help": "Working directory inside the container"}),
    (Opt("mount", ("--mount",), MULTIPLE), {"help": "Attach a filesystem mount (type=bind|volume|tmpfs,src=..,dst=..[,readonly])"}),
    (Opt("volume", ("-v", "--volume"), MULTIPLE), {"help": "Bind mount a host path or a named volume (SRC:DST[:ro])"}),
    (Opt("tmpfs", ("--tmpfs",), MULTIPLE), {"help": "Mount a tmpfs directory"}),
    (Opt("read_only", ("--read-only",), FLAG), {"help": "Mount the container's root filesystem as read only"}),
    (Opt("ulimit", ("--ulimit",), MULTIPLE), {"help": "Ulimit options (NAME=SOFT[:HARD])"}),
    (Opt("sysctl", ("--sysctl",), MULTIPLE), {"help": "Sysctl options (namespaced ones: net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*)"}),
    (Opt("group_add", ("--group-add",), MULTIPLE), {"help": "Add additional groups to join"}),
    (Opt("stop_signal", ("--stop-signal",)), {"help": "Signal to stop the container"}),
    (Opt("cap_add", ("--cap-add",), MULTIPLE), {"help": "Add Linux capabilities"}),
    (Opt("cap_drop", ("--cap-drop",), MULTIPLE), {"help": "Drop Linux capabilities"}),
    (Opt("security_opt", ("--security-opt",), MULTIPLE), {"help": "Security options (seccomp=unconfined|PROFILE.json)"}),
    (Opt("stop_timeout", ("--stop-timeout",), convert=float), {"help": "Seconds to wait after SIGTERM before SIGKILL"}),
    (Opt("label", ("-l", "--label"), MULTIPLE), {"help": "Set metadata (KEY=VALUE)"}),
    (Opt("network", ("--network",)), {"metavar": "NAME", "help": "Connect the container to an attachable cluster network (through this node's agent)"}),
    (Opt("publish", ("-p", "--publish"), MULTIPLE), {"metavar": "[IP:]HOST:CONTAINER[/PROTO]",
                                                     "help": "Publish a container's port to the host (e.g. 8080:80, 127.0.0.1:5353:53/udp)"}),
)
ROOT_FLAG = Opt("root", ("--root",))


class BadValue(ValueError):
    """A flag value that cannot be used (the message names it)."""


def size_bytes(text: str) -> int:
    """docker's RAMInBytes: 64m, 1g, 512k, 1048576 (binary units)."""
    try:
        return mounts.parse_size(text)
    except ConfigError:
        raise BadValue(f"invalid size: {text!r} (e.g. 64m, 1g)") from None


def nano_cpus(text: str) -> int:
    """``--cpus``: shoal.units.parse_cpus (docker's ParseCPUs), its UnitError as a BadValue."""
    try:
        return units.parse_cpus(text)
    except units.UnitError as exc:
        raise BadValue(str(exc)) from None


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


PROBED = ("mount", "volume", "tmpfs", "security_opt", "publish", "ulimit", "sysctl", "stop_signal")
"""The flags whose syntax ``run`` checks before any work (probe_config)."""


def probe_config(image: str, o: dict[str, Any]) -> None:
    """ConfigError for a bad mount, port, security or process flag, before the runtime is asked anything."""
    build_config(image, (), {k: o.get(k) for k in PROBED}, "probe", "probe", {})


def build_config(
    image: str, command: tuple[str, ...], o: dict[str, Any], cid: str, name: str, environ: dict[str, str]
) -> ContainerConfig:
    """The ContainerConfig for ``shoal run`` flags (pure)."""
    entrypoint = None
    if o.get("entrypoint") is not None:
        import shlex  # only for --entrypoint

        entrypoint = shlex.split(o["entrypoint"]) or [""]
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
        memory_bytes=size_bytes(o["memory"]) if o.get("memory") else 0,
        nano_cpus=nano_cpus(o["cpus"]) if o.get("cpus") else 0,
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
