"""``shoal service create``: docker's flags, mapped onto a ServiceSpec.

The flags are docker's names and meanings. Every value is parsed here, before the manager is
contacted, so a typo such as ``--limit-memory 12Q`` fails in one line and sends nothing. Semantic
rules about the resulting spec (negative replicas, unknown constraint syntax, ...) are left to the
manager, so every client gets the same errors.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

import click

from shoal import units
from shoal.cli import client, progress, service_files
from shoal.cli import service_flags_container as container_flags
from shoal.cli.service_opts import (
    FlagError,
    convert,
    parse_env,
    parse_kv,
    parse_network,
    parse_placement_pref,
    parse_port,
    parse_uint,
)
from shoal.proto import control_pb2, types_pb2
from shoal.spec import SpecError, check_mode_allows, check_ratio

ServiceSpec = types_pb2.ServiceSpec
UpdateConfig = types_pb2.UpdateConfig

MODES = {
    "replicated": ServiceSpec.REPLICATED,
    "global": ServiceSpec.GLOBAL,
    "replicated-job": ServiceSpec.REPLICATED_JOB,
    "global-job": ServiceSpec.GLOBAL_JOB,
}
RESTART_CONDITIONS = {
    "any": types_pb2.RestartPolicy.ANY,
    "none": types_pb2.RestartPolicy.NONE,
    "on-failure": types_pb2.RestartPolicy.ON_FAILURE,
}
FAILURE_ACTIONS = {"pause": UpdateConfig.PAUSE, "continue": UpdateConfig.CONTINUE, "rollback": UpdateConfig.ROLLBACK}
ORDERS = {"stop-first": UpdateConfig.STOP_FIRST, "start-first": UpdateConfig.START_FIRST}


def _choice(values: Any) -> click.Choice:
    return click.Choice(list(values), case_sensitive=False)


def _update_options(prefix: str, actions: list[str]) -> list[Callable[[Any], Any]]:
    what = "update" if prefix == "update" else "rollback"
    done = "updated" if prefix == "update" else "rolled back"
    return [
        click.option(f"--{prefix}-parallelism", metavar="uint", help=f"Maximum number of tasks {done} simultaneously (0 for all at once)"),
        click.option(f"--{prefix}-delay", metavar="duration", help=f"Delay between {what}s (ns|us|ms|s|m|h)"),
        click.option(f"--{prefix}-failure-action", type=_choice(actions), help=f"Action on {what} failure"),
        click.option(f"--{prefix}-monitor", metavar="duration", help=f"Duration after each task {what} to monitor for failure (ns|us|ms|s|m|h)"),
        click.option(f"--{prefix}-max-failure-ratio", metavar="float", help=f"Failure rate to tolerate during a{'n' if what == 'update' else ''} {what}"),
        click.option(f"--{prefix}-order", type=_choice(ORDERS), help=f"{what.capitalize()} order"),
    ]


CREATE_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--name", default="", metavar="string", help="Service name"),
    click.option("--mode", type=_choice(MODES), default="replicated", show_default=True, help="Service mode"),
    click.option("--replicas", metavar="uint", help="Number of tasks"),
    click.option("--max-concurrent", metavar="uint", help="Number of job tasks to run concurrently (default equal to --replicas)"),
    click.option("-e", "--env", multiple=True, metavar="list", help="Set environment variables"),
    click.option("-w", "--workdir", default="", metavar="string", help="Working directory inside the container"),
    click.option("-u", "--user", default="", metavar="string", help="Username or UID (format: <name|uid>[:<group|gid>])"),
    click.option("--hostname", default="", metavar="string", help="Container hostname"),
    click.option("-l", "--label", multiple=True, metavar="list", help="Service labels"),
    click.option("--container-label", multiple=True, metavar="list", help="Container labels"),
    click.option("--entrypoint", metavar="command", help="Overwrite the default ENTRYPOINT of the image"),
    click.option("--limit-cpu", metavar="decimal", help="Limit CPUs"),
    click.option("--limit-memory", metavar="bytes", help="Limit Memory"),
    click.option("--limit-pids", metavar="int", help="Limit maximum number of processes (default 0 = unlimited)"),
    click.option("--reserve-cpu", metavar="decimal", help="Reserve CPUs"),
    click.option("--reserve-memory", metavar="bytes", help="Reserve Memory"),
    click.option("--constraint", multiple=True, metavar="list", help="Placement constraints"),
    click.option("--placement-pref", multiple=True, metavar="pref", help="Add a placement preference (spread=node.labels.X)"),
    click.option("--replicas-max-per-node", metavar="uint", help="Maximum number of tasks per node (default 0 = unlimited)"),
    click.option("--rebalance", is_flag=True, help="Move tasks onto nodes that join or come back until the spread is even (replicated mode)"),
    click.option("--restart-condition", type=_choice(RESTART_CONDITIONS), help='Restart when condition is met (default "any")'),
    click.option("--restart-delay", metavar="duration", help="Delay between restart attempts (ns|us|ms|s|m|h) (default 5s)"),
    click.option("--restart-max-attempts", metavar="uint", help="Maximum number of restarts before giving up"),
    click.option("--restart-window", metavar="duration", help="Window used to evaluate the restart policy (ns|us|ms|s|m|h)"),
    *_update_options("update", ["pause", "continue", "rollback"]),
    *_update_options("rollback", ["pause", "continue"]),
    click.option("--health-cmd", metavar="string", help="Command to run to check health"),
    click.option("--health-interval", metavar="duration", help="Time between running the check (ms|s|m|h)"),
    click.option("--health-timeout", metavar="duration", help="Maximum time to allow one check to run (ms|s|m|h)"),
    click.option("--health-retries", metavar="int", help="Consecutive failures needed to report unhealthy"),
    click.option("--health-start-period", metavar="duration", help="Start period for the container to initialize before counting retries"),
    click.option("--health-start-interval", metavar="duration", help="Time between running the check during the start period (ms|s|m|h)"),
    click.option("--no-healthcheck", is_flag=True, help="Disable any container-specified HEALTHCHECK"),
    click.option("-p", "--publish", multiple=True, metavar="port", help="Publish a port as a node port ([published:]target[/proto] or published=P,target=T,...)"),
    click.option("--network", multiple=True, metavar="network", help="Network attachments (NAME or name=NAME,alias=A)"),
    click.option("--endpoint-mode", type=_choice(["vip", "dnsrr"]), help='Endpoint mode (vip or dnsrr) (default "vip")'),
    click.option("--stop-grace-period", metavar="duration", help="Time to wait before force killing a container (ns|us|ms|s|m|h) (default 10s)"),
    click.option("--init/--no-init", default=None,
                 help="Use an init inside each service container to forward signals and reap processes"),
    *container_flags.CREATE_OPTIONS,
    click.option("--security-opt", multiple=True, metavar="option", help="Security options (seccomp=unconfined|PROFILE.json)"),
    *service_files.CREATE_OPTIONS,
    click.option("--no-resolve-image", is_flag=True, help="Do not check the image against the cluster's image store (use an image loaded on the nodes)"),
    click.option("-d", "--detach", is_flag=True, help="Exit immediately instead of waiting for the service to converge"),
    click.option("-q", "--quiet", is_flag=True, help="Suppress progress output"),
]


def _apply(options: list[Callable[[Any], Any]], fn: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(options):
        fn = opt(fn)
    return fn


def _update_config(o: dict[str, Any], prefix: str, cfg: types_pb2.UpdateConfig) -> None:
    key = prefix.replace("-", "_")
    if o.get(f"{key}_parallelism") is not None:
        cfg.parallelism = parse_uint(f"--{prefix}-parallelism", o[f"{key}_parallelism"])
    if o.get(f"{key}_delay") is not None:
        cfg.delay_ns = convert(f"--{prefix}-delay", o[f"{key}_delay"], units.parse_duration)
    if o.get(f"{key}_failure_action"):
        cfg.failure_action = FAILURE_ACTIONS[o[f"{key}_failure_action"].lower()]
    if o.get(f"{key}_monitor") is not None:
        cfg.monitor_ns = convert(f"--{prefix}-monitor", o[f"{key}_monitor"], units.parse_duration)
    if o.get(f"{key}_max_failure_ratio") is not None:
        flag, raw = f"--{prefix}-max-failure-ratio", o[f"{key}_max_failure_ratio"]
        ratio = convert(flag, raw, float)
        try:
            check_ratio(f"{key}_config.max_failure_ratio", ratio)
        except SpecError as exc:
            raise FlagError(flag, raw, exc.message) from None
        cfg.max_failure_ratio = ratio
    if o.get(f"{key}_order"):
        cfg.order = ORDERS[o[f"{key}_order"].lower()]


def require_mode(mode: int, field: str) -> None:
    """Refuse a flag the service's mode does not take, with the manager's own rule and message."""
    try:
        check_mode_allows(mode, field)
    except SpecError as exc:
        raise click.UsageError(exc.message) from None


def _int(flag: str, value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise FlagError(flag, value, "expected a whole number") from None


def _healthcheck(o: dict[str, Any], hc: types_pb2.HealthCheck) -> None:
    health_flags = ["cmd", "interval", "timeout", "retries", "start_period", "start_interval"]
    if o.get("no_healthcheck"):
        if any(o.get(f"health_{f}") is not None for f in health_flags):
            raise click.UsageError("--no-healthcheck conflicts with --health-* options")
        hc.test[:] = ["NONE"]
        return
    if o.get("health_cmd") is not None:
        hc.test[:] = ["CMD-SHELL", o["health_cmd"]]
    for name in ("interval", "timeout", "start_period", "start_interval"):
        raw = o.get(f"health_{name}")
        if raw is not None:
            setattr(hc, f"{name}_ns", convert(f"--health-{name.replace('_', '-')}", raw, units.parse_duration))
    if o.get("health_retries") is not None:
        hc.retries = parse_uint("--health-retries", o["health_retries"])


def _container(c: types_pb2.ContainerSpec, image: str, args: tuple[str, ...] | list[str], o: dict[str, Any]) -> None:
    c.image = image
    c.args.extend(args)
    if o.get("entrypoint") is not None:
        try:
            c.command.extend(shlex.split(o["entrypoint"]))
        except ValueError as exc:
            raise FlagError("--entrypoint", o["entrypoint"], str(exc)) from None
    c.env.extend(parse_env(e) for e in o.get("env") or ())
    c.dir = o.get("workdir") or ""
    c.user = o.get("user") or ""
    c.hostname = o.get("hostname") or ""
    if o.get("init") is not None:  # --init=false too: docker's inspect shows "Init": false once it is given
        c.init = bool(o["init"])
    if o.get("security_opt"):
        c.seccomp_profile = _seccomp(o["security_opt"])
    for value in o.get("container_label") or ():
        k, v = parse_kv("--container-label", value)
        c.labels[k] = v
    if o.get("stop_grace_period") is not None:
        c.stop_grace_period_ns = convert("--stop-grace-period", o["stop_grace_period"], units.parse_duration)
    _healthcheck(o, c.healthcheck)
    container_flags.apply_create(c, o)
    service_files.add_refs(c, o)


def _seccomp(values: tuple[str, ...]) -> str:
    from shoal.cli import secopts  # loads the runtime's profile checker only when the flag is given

    try:
        return secopts.parse(values)
    except ValueError as exc:
        raise FlagError("--security-opt", ",".join(values), str(exc)) from None


def _resources(res: types_pb2.ResourceRequirements, o: dict[str, Any]) -> None:
    for kind, target in (("limit", res.limits), ("reserve", res.reservations)):
        if o.get(f"{kind}_cpu") is not None:
            target.nano_cpus = convert(f"--{kind}-cpu", o[f"{kind}_cpu"], units.parse_cpus)
        if o.get(f"{kind}_memory") is not None:
            target.memory_bytes = convert(f"--{kind}-memory", o[f"{kind}_memory"], units.parse_bytes)
    if o.get("limit_pids") is not None:
        res.limits.pids = parse_uint("--limit-pids", o["limit_pids"])


def _restart_policy(rp: types_pb2.RestartPolicy, o: dict[str, Any]) -> None:
    if o.get("restart_condition"):
        rp.condition = RESTART_CONDITIONS[o["restart_condition"].lower()]
    if o.get("restart_delay") is not None:
        rp.delay_ns = convert("--restart-delay", o["restart_delay"], units.parse_duration)
    if o.get("restart_max_attempts") is not None:
        rp.max_attempts = parse_uint("--restart-max-attempts", o["restart_max_attempts"])
    if o.get("restart_window") is not None:
        rp.window_ns = convert("--restart-window", o["restart_window"], units.parse_duration)


def build_spec(image: str, args: tuple[str, ...] | list[str], o: dict[str, Any]) -> types_pb2.ServiceSpec:
    """The ServiceSpec for ``svc create`` with options ``o`` (click's keyword arguments).

    Raises FlagError (or click.UsageError for conflicting flags) before anything is sent.
    """
    spec = ServiceSpec(name=o.get("name") or "", mode=MODES[(o.get("mode") or "replicated").lower()])
    if o.get("replicas") is not None:
        require_mode(spec.mode, "replicas")
        spec.replicas = _int("--replicas", o["replicas"])  # the manager refuses negative counts
    if o.get("max_concurrent") is not None:
        require_mode(spec.mode, "max_concurrent")
        spec.max_concurrent = parse_uint("--max-concurrent", o["max_concurrent"])
    for value in o.get("label") or ():
        k, v = parse_kv("--label", value)
        spec.labels[k] = v

    _container(spec.container, image, args, o)
    _resources(spec.resources, o)

    pl = spec.placement
    pl.constraints.extend(o.get("constraint") or ())
    pl.preferences.extend(parse_placement_pref(p) for p in o.get("placement_pref") or ())
    if o.get("replicas_max_per_node") is not None:
        pl.max_replicas_per_node = parse_uint("--replicas-max-per-node", o["replicas_max_per_node"])
    if o.get("rebalance"):
        require_mode(spec.mode, "rebalance")
        spec.rebalance = True

    _restart_policy(spec.restart_policy, o)
    _update_config(o, "update", spec.update_config)
    _update_config(o, "rollback", spec.rollback_config)
    for value in o.get("publish") or ():
        spec.ports.extend(parse_port(value))
    spec.networks.extend(parse_network(v) for v in o.get("network") or ())
    if o.get("endpoint_mode"):
        spec.endpoint_mode = types_pb2.DNSRR if o["endpoint_mode"].lower() == "dnsrr" else types_pb2.VIP
    return spec


def create_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate ``fn`` with every ``svc create`` flag, in docker's order."""
    return _apply(CREATE_OPTIONS, fn)


@click.command("create", context_settings={"allow_interspersed_args": False}, short_help="Create a new service")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@create_options
def create_command(image: str, command: tuple[str, ...], **o: Any) -> None:
    """Create a new service from IMAGE running [COMMAND] [ARG...].

    Everything after IMAGE is the command and its arguments, passed through untouched.
    """
    if image.startswith("-"):  # only reached with an option click does not know after "--"
        raise click.UsageError(f"unknown flag: {image}")
    spec = build_spec(image, command, o)
    resp = client.stub().CreateService(control_pb2.CreateServiceRequest(spec=spec, no_resolve_image=bool(o.get("no_resolve_image"))))
    click.echo(resp.service.id)
    if not o.get("detach"):
        progress.wait(resp.service.id, quiet=bool(o.get("quiet")))
