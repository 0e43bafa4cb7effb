"""The ``svc update`` flags that change the task template and its policies, as docker names them.

``--env-add/-rm``, ``--container-label-add/-rm``, ``--placement-pref-add/-rm``, ``--limit-*``,
``--reserve-*``, ``--restart-*``, ``--rollback-*``, ``--health-*`` / ``--no-healthcheck`` and
``--force``. ``apply`` is pure: it changes a copy of the spec or raises one ``FlagError`` /
``UsageError`` naming the flag, so bad input writes nothing. Values are parsed by the same helpers
``svc create`` uses; docker's order holds (removals, then additions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from shoal.cli.service_create import RESTART_CONDITIONS as _CONDITIONS
from shoal.cli.service_create import (
    _choice,
    _healthcheck,
    _resources,
    _restart_policy,
    _update_config,
    _update_options,
)
from shoal.cli.service_opts import FlagError, parse_env, parse_kv, parse_placement_pref
from shoal.proto import types_pb2

ServiceSpec = types_pb2.ServiceSpec
_JOBS = (ServiceSpec.REPLICATED_JOB, ServiceSpec.GLOBAL_JOB)
_HEALTH = (
    "health_cmd",
    "health_interval",
    "health_timeout",
    "health_retries",
    "health_start_period",
    "health_start_interval",
    "no_healthcheck",
)
_POLICY_PREFIXES = ("update_", "rollback_")

OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--env-add", multiple=True, metavar="list", help="Add or update an environment variable"),
    click.option("--env-rm", multiple=True, metavar="list", help="Remove an environment variable"),
    click.option(
        "--container-label-add", multiple=True, metavar="list", help="Add or update a container label"
    ),
    click.option(
        "--container-label-rm", multiple=True, metavar="list", help="Remove a container label by its key"
    ),
    click.option(
        "--placement-pref-add",
        multiple=True,
        metavar="pref",
        help="Add a placement preference (spread=node.labels.X)",
    ),
    click.option("--placement-pref-rm", multiple=True, metavar="pref", help="Remove a placement preference"),
    click.option("--limit-cpu", metavar="decimal", help="Limit CPUs"),
    click.option("--limit-memory", metavar="bytes", help="Limit Memory"),
    click.option("--limit-pids", metavar="int", help="Limit maximum number of processes (0 = unlimited)"),
    click.option("--reserve-cpu", metavar="decimal", help="Reserve CPUs"),
    click.option("--reserve-memory", metavar="bytes", help="Reserve Memory"),
    click.option("--restart-condition", type=_choice(_CONDITIONS), help="Restart when condition is met"),
    click.option(
        "--restart-delay", metavar="duration", help="Delay between restart attempts (ns|us|ms|s|m|h)"
    ),
    click.option(
        "--restart-max-attempts", metavar="uint", help="Maximum number of restarts before giving up"
    ),
    click.option(
        "--restart-window",
        metavar="duration",
        help="Window used to evaluate the restart policy (ns|us|ms|s|m|h)",
    ),
    *_update_options("rollback", ["pause", "continue"]),
    click.option("--health-cmd", metavar="string", help="Command to run to check health"),
    click.option("--health-interval", metavar="duration", help="Time between running the check (ms|s|m|h)"),
    click.option(
        "--health-timeout", metavar="duration", help="Maximum time to allow one check to run (ms|s|m|h)"
    ),
    click.option("--health-retries", metavar="int", help="Consecutive failures needed to report unhealthy"),
    click.option(
        "--health-start-period",
        metavar="duration",
        help="Start period for the container to initialize before counting retries",
    ),
    click.option(
        "--health-start-interval",
        metavar="duration",
        help="Time between running the check during the start period (ms|s|m|h)",
    ),
    click.option(
        "--no-healthcheck", is_flag=True, default=None, help="Disable any container-specified HEALTHCHECK"
    ),
    click.option("--force", is_flag=True, help="Force update even if no changes require it"),
    click.option("--rollback", is_flag=True, help="Rollback to previous specification"),
]

PASSIVE = frozenset({"detach", "quiet", "rollback", "no_resolve_image"})
"""Options that change nothing in the spec (``--rollback`` only combines with these)."""


def _env_key(entry: str) -> str:
    return entry.partition("=")[0]


def _env(c: types_pb2.ContainerSpec, remove: tuple[str, ...], add: tuple[str, ...]) -> None:
    gone = {_env_key(r) for r in remove}
    kept = [e for e in c.env if _env_key(e) not in gone]
    for value in add:
        entry = _env_add(value)
        kept = [e for e in kept if _env_key(e) != _env_key(entry)]
        kept.append(entry)
    c.env[:] = kept


def _env_add(value: str) -> str:
    try:
        return parse_env(value)
    except FlagError as exc:
        raise FlagError("--env-add", value, str(exc).rsplit(": ", 1)[-1]) from None


def _container_labels(c: types_pb2.ContainerSpec, remove: tuple[str, ...], add: tuple[str, ...]) -> None:
    for key in remove:
        c.labels.pop(key, None)
    for value in add:
        k, v = parse_kv("--container-label-add", value)
        c.labels[k] = v


def _placement_prefs(pl: types_pb2.Placement, remove: tuple[str, ...], add: tuple[str, ...]) -> None:
    gone = {parse_placement_pref(r).spread for r in remove}
    kept = [p for p in pl.preferences if p.spread not in gone]
    for value in add:
        kept.append(parse_placement_pref(value))
    del pl.preferences[:]
    pl.preferences.extend(kept)


def _given(o: dict[str, Any], key: str) -> bool:
    value = o.get(key)
    return value not in (None, (), False, "")


def check_rollback_alone(o: dict[str, Any]) -> None:
    """``--rollback`` goes back to the previous spec: a flag that would also change it is a usage error."""
    if not o.get("rollback"):
        return
    others = sorted(
        "--" + k.replace("_", "-").removesuffix("-") for k in o if k not in PASSIVE and _given(o, k)
    )
    if others:
        raise click.UsageError(
            f"--rollback cannot be combined with {', '.join(others)}: it restores the previous spec as it was"
        )


def _check_modes(spec: types_pb2.ServiceSpec, o: dict[str, Any]) -> None:
    if spec.mode not in _JOBS:
        return
    for key in sorted(o):
        if key.startswith(_POLICY_PREFIXES) and _given(o, key):
            flag = "--" + key.replace("_", "-")
            raise click.UsageError(
                f"{flag} cannot be used with a job: a job starts a new run when its spec changes, it is not rolled"
            )


def apply(spec: types_pb2.ServiceSpec, o: dict[str, Any]) -> None:
    """Apply this module's flags in ``o`` (click's keyword arguments) to ``spec`` in place."""
    _check_modes(spec, o)
    c = spec.container
    _env(c, tuple(o.get("env_rm") or ()), tuple(o.get("env_add") or ()))
    _container_labels(c, tuple(o.get("container_label_rm") or ()), tuple(o.get("container_label_add") or ()))
    _placement_prefs(
        spec.placement, tuple(o.get("placement_pref_rm") or ()), tuple(o.get("placement_pref_add") or ())
    )
    _resources(spec.resources, o)
    _restart_policy(spec.restart_policy, o)
    _update_config(o, "rollback", spec.rollback_config)
    if any(_given(o, k) for k in _HEALTH):
        if o.get("no_healthcheck"):
            c.healthcheck.Clear()
        elif c.healthcheck.test[:1] == ["NONE"]:
            c.healthcheck.ClearField("test")
        _healthcheck(o, c.healthcheck)
        if c.healthcheck.ListFields() and not c.healthcheck.test:
            raise FlagError(
                "--health-cmd",
                "",
                "the service has no health check: give --health-cmd with the other --health-* options",
            )
    if o.get("force"):
        spec.force_update += 1
