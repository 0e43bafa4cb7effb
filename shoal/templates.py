"""Docker's service templates (``{{.Service.Name}}``, ``{{.Task.Slot}}``, ``{{.Node.Hostname}}``, ...).

A service's ``--hostname``, ``--env`` values and ``--mount`` source and target may name facts that
only exist once a task is placed: docker expands them on the node, and so does shoal (the worker
calls ``expand`` with the task's own facts). The manager and the CLI call ``check`` on the spec as it
is written, so a typo such as ``{{.Task.Slots}}`` is refused when the service is created, not when
its first task starts. Only docker's field forms are understood (with optional spaces inside the
braces); anything else between ``{{`` and ``}}`` is an error naming it. Pure functions on strings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

FIELDS = (
    ".Service.Name", ".Service.ID", ".Service.Labels", ".Task.ID", ".Task.Name", ".Task.Slot",
    ".Node.ID", ".Node.Hostname", ".Node.Platform.OS", ".Node.Platform.Architecture",
)
_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_LABEL = re.compile(r'^index\s+\.Service\.Labels\s+"([^"]*)"$')


class TemplateError(ValueError):
    """A template that cannot be expanded; the message names the action that is wrong."""


@dataclass(frozen=True)
class Context:
    """The facts a template may name, for one task on one node."""

    service_name: str = ""
    service_id: str = ""
    service_labels: Mapping[str, str] | None = None
    task_id: str = ""
    task_name: str = ""
    """docker's full task name: ``service.slot.taskid`` (``service.nodeid.taskid`` for a global task)."""
    task_slot: str = ""
    """The slot number; a global task (no slot) gets its node's id, as its name does."""
    node_id: str = ""
    node_hostname: str = ""
    platform_os: str = "linux"
    platform_arch: str = "x86_64"

    def value(self, field: str) -> str:
        values = {
            ".Service.Name": self.service_name, ".Service.ID": self.service_id,
            ".Task.ID": self.task_id, ".Task.Name": self.task_name, ".Task.Slot": self.task_slot,
            ".Node.ID": self.node_id, ".Node.Hostname": self.node_hostname,
            ".Node.Platform.OS": self.platform_os, ".Node.Platform.Architecture": self.platform_arch,
        }
        return values[field]


SAMPLE = Context(
    service_name="service", service_id="s" * 25, task_id="t" * 25, task_name=f"service.1.{'t' * 25}",
    task_slot="1", node_id="n" * 25, node_hostname="node",
)
"""Plausible facts to check a template's result against (names, paths) before any task exists."""


def has_template(text: str) -> bool:
    return "{{" in text


def _action(body: str, ctx: Context) -> str:
    action = body.strip()
    if action in FIELDS and action != ".Service.Labels":
        return ctx.value(action)
    m = _LABEL.fullmatch(action)
    if m:
        return dict(ctx.service_labels or {}).get(m.group(1), "")
    raise TemplateError(f"template {{{{{body}}}}}: unknown field (use one of {', '.join(f for f in FIELDS if f != '.Service.Labels')}, "
                        f'or index .Service.Labels "KEY")')


def expand(text: str, ctx: Context) -> str:
    """``text`` with every ``{{...}}`` replaced by its value in ``ctx``; TemplateError on a bad action."""
    if "{{" not in text and "}}" not in text:
        return text
    rest = _ACTION.sub("", text)
    if "{{" in rest or "}}" in rest:
        raise TemplateError(f"template {text!r}: unbalanced braces")
    return _ACTION.sub(lambda m: _action(m.group(1), ctx), text)


def check(text: str) -> str:
    """``text`` expanded with SAMPLE facts: raises TemplateError when it is not a valid template."""
    return expand(text, SAMPLE)
