"""The ``deploy:`` section of a service: mode, replicas, placement, resources and the policies.

Values are validated as Swarm needs them: modes and enumerations are closed sets, counts are whole
numbers that are not negative, durations and sizes use docker's grammars. Rules that relate two
keys (replicas with a global mode) are checked here so they point at the section that is wrong.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import model_validator

from shoal.stack.model_base import Bytes, Cpus, Duration, Labels, Model, NonNegInt, Ratio

Mode = Literal["replicated", "global", "replicated-job", "global-job"]
REPLICATED_MODES = ("replicated", "replicated-job")


class Preference(Model):
    """``spread: node.labels.zone``: spread tasks over the values of a node label."""

    spread: str


class Placement(Model):
    """Where tasks may run."""

    constraints: list[str] = []
    preferences: list[Preference] = []
    max_replicas_per_node: NonNegInt | None = None


class Limits(Model):
    """Upper bounds for each task."""

    cpus: Cpus | None = None
    memory: Bytes | None = None
    pids: NonNegInt | None = None


class Reservations(Model):
    """What the scheduler sets aside for each task; generic resources and devices are accepted only."""

    cpus: Cpus | None = None
    memory: Bytes | None = None
    generic_resources: list[Any] | None = None
    devices: list[Any] | None = None


class Resources(Model):
    """``limits`` and ``reservations``."""

    limits: Limits | None = None
    reservations: Reservations | None = None


class RestartPolicy(Model):
    """When a task that exits is replaced."""

    condition: Literal["none", "on-failure", "any"] | None = None
    delay: Duration | None = None
    max_attempts: NonNegInt | None = None
    window: Duration | None = None


class UpdateConfig(Model):
    """How a changed service replaces its tasks."""

    parallelism: NonNegInt | None = None
    delay: Duration | None = None
    failure_action: Literal["continue", "rollback", "pause"] | None = None
    monitor: Duration | None = None
    max_failure_ratio: Ratio | None = None
    order: Literal["start-first", "stop-first"] | None = None


class RollbackConfig(UpdateConfig):
    """How a failed update goes back; it cannot roll back itself."""

    failure_action: Literal["continue", "pause"] | None = None  # narrower than the update's


class Deploy(Model):
    """Swarm's deployment settings for one service."""

    mode: Mode | None = None
    replicas: NonNegInt | None = None
    endpoint_mode: Literal["vip", "dnsrr"] | None = None
    labels: Labels = {}
    placement: Placement | None = None
    resources: Resources | None = None
    restart_policy: RestartPolicy | None = None
    update_config: UpdateConfig | None = None
    rollback_config: RollbackConfig | None = None

    @model_validator(mode="after")
    def _mode_rules(self) -> Deploy:
        mode = self.mode or "replicated"
        if self.replicas is not None and mode not in REPLICATED_MODES:
            raise ValueError(f"replicas can only be used with replicated or replicated-job mode (mode is {mode})")
        if self.placement and self.placement.max_replicas_per_node and mode not in REPLICATED_MODES:
            raise ValueError(f"placement.max_replicas_per_node can only be used with replicated mode (mode is {mode})")
        return self
