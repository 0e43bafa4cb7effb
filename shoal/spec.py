"""Validation and defaults for service specs, the one gate every spec passes before it reaches etcd.

Pure functions on the protobuf ServiceSpec, in the core so the manager and the CLI apply the same rule
with the same message: the CLI checks a flag as it reads it (``check_mode_allows``, ``check_ratio``),
the manager checks the whole spec (``validate``). Each error names the field a user typed, so the CLI
can print one clear line; nothing is written when validation fails.
"""

from __future__ import annotations

import re

from shoal import secretspec, spec_container
from shoal.constraints import ConstraintError, parse_constraints
from shoal.proto import types_pb2 as pb

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
ENV_RE = re.compile(r"^[^=\s][^=]*=")
DEFAULT_RESTART_DELAY_NS = 5 * 10**9
DEFAULT_STOP_GRACE_NS = 10 * 10**9
DEFAULT_MONITOR_NS = 5 * 10**9
MIN_MEMORY = 6 * 1024 * 1024  # docker refuses limits under 6 MiB
MAX_REPLICAS = 10_000
"""The most replicas one service may ask for. Docker's limit is the uint64, so 100,000,000 was accepted
and wedged the leader (every task is an etcd key, a status key and a row in every reconcile and
scheduling pass: ~2 KB and ~50 us each, so 1e8 tasks is ~200 GB and hours per pass). 10,000 tasks cost
~20 MB in etcd (its default quota is 2 GB) and well under a second per pass, and exceed what one
service needs on a cluster of a few hundred nodes; shard bigger workloads into several services."""
BUILTIN_IMAGES = frozenset({"host"})
_IMAGE_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REF_RE = re.compile(
    rf"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?{_IMAGE_COMPONENT}(?:/{_IMAGE_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
"""A well-formed image reference, ``[registry/]name[:tag][@sha256:digest]`` (docker's grammar).

Whether a node has the image is only known there: a missing one rejects the task, not the spec."""
SUPPORTED_MODES = frozenset({pb.ServiceSpec.REPLICATED, pb.ServiceSpec.GLOBAL, pb.ServiceSpec.REPLICATED_JOB, pb.ServiceSpec.GLOBAL_JOB})


_REPLICATED_MODES = frozenset({pb.ServiceSpec.REPLICATED, pb.ServiceSpec.REPLICATED_JOB})
MODE_ONLY: dict[str, tuple[frozenset[int], str]] = {
    "replicas": (_REPLICATED_MODES, "replicas can only be used with replicated or replicated-job mode"),
    "rebalance": (frozenset({pb.ServiceSpec.REPLICATED}), "rebalance can only be used with replicated mode"),
    "max_concurrent": (frozenset({pb.ServiceSpec.REPLICATED_JOB}), "max-concurrent can only be used with replicated-job mode"),
    "placement.max_replicas_per_node": (_REPLICATED_MODES, "max-replicas-per-node can only be used with replicated mode"),
}
"""Spec fields only some modes accept: field -> (the modes, the message when another mode sets it)."""


class SpecError(ValueError):
    """An invalid spec; ``str()`` is the one line shown to the user, ``message`` the part after the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"invalid service spec: {field}: {message}")
        self.field = field
        self.message = message


def mode_allows(mode: int, field: str) -> bool:
    """Whether a service of ``mode`` may set ``field`` (a key of MODE_ONLY)."""
    return mode in MODE_ONLY[field][0]


def check_mode_allows(mode: int, field: str) -> None:
    """Raise SpecError when a service of ``mode`` may not set ``field`` (a key of MODE_ONLY)."""
    if not mode_allows(mode, field):
        raise SpecError(field, MODE_ONLY[field][1])


def check_ratio(field: str, ratio: float) -> None:
    """Raise SpecError unless ``ratio`` (an update or rollback max failure ratio) is between 0 and 1."""
    if not 0.0 <= ratio <= 1.0:
        raise SpecError(field, "must be between 0 and 1")


def _check_resources(prefix: str, res: pb.Resources) -> None:
    if res.nano_cpus < 0:
        raise SpecError(f"{prefix}.cpus", "must not be negative")
    if res.memory_bytes < 0:
        raise SpecError(f"{prefix}.memory", "must not be negative")
    if 0 < res.memory_bytes < MIN_MEMORY:
        raise SpecError(f"{prefix}.memory", "must be at least 6MiB")
    if res.pids < 0:
        raise SpecError(f"{prefix}.pids", "must not be negative")


def _check_ports(ports: list[pb.PortConfig]) -> None:
    seen: set[tuple[int, int]] = set()
    for p in ports:
        if not 1 <= p.target_port <= 65535:
            raise SpecError("ports.target", f"{p.target_port} is not a port number (1-65535)")
        if p.published_port > 65535:
            raise SpecError("ports.published", f"{p.published_port} is not a port number (1-65535)")
        if p.published_port:
            k = (p.published_port, p.protocol)
            if k in seen:
                raise SpecError("ports.published", f"port {p.published_port} is published twice")
            seen.add(k)


def _check_mode_fields(spec: pb.ServiceSpec) -> None:
    """The fields set for a mode that does not take them, and a negative replica count."""
    if spec.HasField("replicas"):
        check_mode_allows(spec.mode, "replicas")
        if spec.replicas < 0:
            raise SpecError("replicas", f"must be 0 or more, got {spec.replicas}")
        if spec.replicas > MAX_REPLICAS:
            raise SpecError("replicas", f"{spec.replicas} is more than the {MAX_REPLICAS} replicas a service may have")
    if spec.rebalance:
        check_mode_allows(spec.mode, "rebalance")
    if spec.max_concurrent:
        check_mode_allows(spec.mode, "max_concurrent")
    if spec.placement.max_replicas_per_node:
        check_mode_allows(spec.mode, "placement.max_replicas_per_node")


def validate(spec: pb.ServiceSpec, images: frozenset[str] = BUILTIN_IMAGES) -> None:
    """Raise SpecError naming the first invalid field; ``images`` are the images the cluster knows."""
    if not spec.name:
        raise SpecError("name", "a service needs a name (--name)")
    if not NAME_RE.fullmatch(spec.name):
        raise SpecError("name", f"{spec.name!r} must be 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit")
    if spec.mode not in SUPPORTED_MODES:
        raise SpecError("mode", f"unknown mode {spec.mode} (replicated, global, replicated-job, global-job)")
    _check_mode_fields(spec)
    c = spec.container
    if not c.image:
        raise SpecError("image", "a service needs an image")
    if c.image not in images and not IMAGE_REF_RE.fullmatch(c.image):
        raise SpecError("image", f"invalid reference format: {c.image!r} (expected name[:tag] or name@sha256:digest)")
    if c.image == "host" and not (c.command or c.args):
        raise SpecError("command", "the host image has no default command; give one after the image")
    for e in c.env:
        if not ENV_RE.match(e):
            raise SpecError("env", f"{e!r} is not KEY=VALUE")
    if c.HasField("stop_grace_period_ns") and c.stop_grace_period_ns < 0:
        raise SpecError("stop_grace_period", "must not be negative")
    _check_resources("resources.limits", spec.resources.limits)
    _check_resources("resources.reservations", spec.resources.reservations)
    try:
        parse_constraints(list(spec.placement.constraints))
    except ConstraintError as exc:
        raise SpecError("placement.constraints", str(exc)) from None
    for pref in spec.placement.preferences:
        if not pref.spread.startswith(("node.labels.", "engine.labels.")):
            raise SpecError("placement.preferences", f"spread={pref.spread!r}: expected node.labels.X or engine.labels.X")
    rp = spec.restart_policy
    if rp.HasField("delay_ns") and rp.delay_ns < 0:
        raise SpecError("restart_policy.delay", "must not be negative")
    if rp.window_ns < 0:
        raise SpecError("restart_policy.window", "must not be negative")
    for name, uc in (("update_config", spec.update_config), ("rollback_config", spec.rollback_config)):
        if uc.delay_ns < 0 or (uc.HasField("monitor_ns") and uc.monitor_ns < 0):
            raise SpecError(name, "delays must not be negative")
        check_ratio(f"{name}.max_failure_ratio", uc.max_failure_ratio)
    try:
        spec_container.check(c, spec.labels)
    except spec_container.FieldError as exc:
        raise SpecError(exc.field, exc.message) from None
    hc = c.healthcheck
    if hc.test and hc.test[0] not in ("NONE", "CMD", "CMD-SHELL"):
        raise SpecError("healthcheck.test", "must start with NONE, CMD or CMD-SHELL")
    _check_ports(list(spec.ports))
    _check_networks(spec)
    try:
        secretspec.check_refs(c)
    except secretspec.SecretSpecError as exc:
        raise SpecError(exc.kind + "s", str(exc)) from None
    _check_depends_on(spec)


MAX_DEPENDENCIES = 100  # a bound on what one spec makes the scheduler evaluate each pass


def _check_depends_on(spec: pb.ServiceSpec) -> None:
    if len(spec.depends_on) > MAX_DEPENDENCIES:
        raise SpecError("depends_on", f"{len(spec.depends_on)} dependencies: at most {MAX_DEPENDENCIES}")
    seen: set[str] = set()
    for dep in spec.depends_on:
        if not NAME_RE.fullmatch(dep.service):
            raise SpecError("depends_on", f"{dep.service!r} is not a service name")
        if dep.service == spec.name:
            raise SpecError("depends_on", f"service {spec.name} cannot depend on itself")
        if dep.service in seen:
            raise SpecError("depends_on", f"service {dep.service} is listed twice")
        if dep.condition not in pb.ServiceDependency.Condition.values():
            raise SpecError("depends_on", f"unknown condition {dep.condition} for {dep.service}")
        seen.add(dep.service)


def _check_networks(spec: pb.ServiceSpec) -> None:
    seen: set[str] = set()
    for att in spec.networks:
        if not att.target:
            raise SpecError("networks", "a network attachment needs a network name")
        if att.target in seen:
            raise SpecError("networks", f"network {att.target} is listed twice")
        seen.add(att.target)
    if spec.endpoint_mode == pb.DNSRR and any(p.publish_mode == pb.PortConfig.INGRESS for p in spec.ports):
        raise SpecError("endpoint_mode", "ports published in ingress mode cannot be used with dnsrr mode (publish with mode=host)")


def with_defaults(spec: pb.ServiceSpec) -> pb.ServiceSpec:
    """A copy with Swarm's defaults filled in where the user left a field unset."""
    out = pb.ServiceSpec()
    out.CopyFrom(spec)
    if out.mode in (pb.ServiceSpec.REPLICATED, pb.ServiceSpec.REPLICATED_JOB) and not out.HasField("replicas"):
        out.replicas = 1
    if not out.restart_policy.HasField("delay_ns"):
        out.restart_policy.delay_ns = DEFAULT_RESTART_DELAY_NS
    if not out.container.HasField("stop_grace_period_ns"):
        out.container.stop_grace_period_ns = DEFAULT_STOP_GRACE_NS
    secretspec.with_defaults(out.container)
    for uc in (out.update_config, out.rollback_config):
        if not uc.HasField("parallelism"):
            uc.parallelism = 1
        if not uc.HasField("monitor_ns"):
            uc.monitor_ns = DEFAULT_MONITOR_NS
    return out
