"""A task's container settings as the runtime takes them, with docker's templates expanded on the node.

``{{.Service.Name}}``, ``{{.Task.Slot}}``, ``{{.Node.Hostname}}``, ... in the hostname, the env and a
mount's source or target are only known here, where the task runs: ``context`` gathers the facts,
``options`` turns the spec's docker-flag fields (mounts, read-only root, capabilities, ulimits,
sysctls, groups, stop signal, json-file log rotation) into ContainerConfig keyword arguments, ``resolv_conf`` the file a task on a
node without networking gets from its ``--dns*`` flags. Pure; a template the manager
let through but that cannot expand raises ValueError, and the task is rejected with that reason.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from shoal import logopts, spec_container, templates
from shoal.proto import types_pb2 as pb


def full_task_name(task: pb.Task) -> str:
    """docker's task name in templates: ``service.slot.taskid`` (``service.nodeid.taskid`` when global)."""
    return f"{task.service_name}.{task.slot if task.slot else task.node_id}.{task.id}"


def context(task: pb.Task, node_name: str) -> templates.Context:
    """The facts a template in ``task``'s spec may name."""
    return templates.Context(
        service_name=task.service_name, service_id=task.service_id, service_labels=dict(task.spec.labels),
        task_id=task.id, task_name=full_task_name(task), task_slot=str(task.slot) if task.slot else task.node_id,
        node_id=task.node_id, node_hostname=node_name,
    )


def hostname(task: pb.Task, ctx: templates.Context) -> str:
    """The spec's hostname expanded, or the task id's first 12 characters (docker's default)."""
    return templates.expand(task.spec.container.hostname, ctx) if task.spec.container.hostname else task.id[:12]


def env(entries: list[str], ctx: templates.Context) -> list[str]:
    return [templates.expand(e, ctx) for e in entries]


def mounts(task: pb.Task, ctx: templates.Context) -> list[dict[str, Any]]:
    """The spec's mounts as runtime mount dicts, sources, targets and volume subpaths expanded."""
    out = []
    for m in task.spec.container.mounts:
        d = spec_container.mount_to_dict(m)
        d["source"], d["target"] = templates.expand(d["source"], ctx), templates.expand(d["target"], ctx)
        d["volume_subpath"] = templates.expand(d["volume_subpath"], ctx)
        out.append(d)
    return out


def options(task: pb.Task) -> dict[str, Any]:
    """ContainerConfig keyword arguments for the docker-flag fields of the task's container spec."""
    c = task.spec.container
    size, files = logopts.rotation(c.log_driver, c.log_options)
    return {
        "log_max_size": size,
        "log_max_files": files,
        "read_only": c.read_only,
        "cap_add": list(c.cap_add),
        "cap_drop": list(c.cap_drop),
        "stop_signal": c.stop_signal,
        "ulimits": [{"name": u.name, "soft": u.soft, "hard": u.hard} for u in c.ulimits],
        "sysctls": dict(c.sysctls),
        "group_add": list(c.groups),
    }


def resolv_conf(dns: pb.DNSConfig, host_nameservers: Sequence[str]) -> bytes | None:
    """On a node without networking (a task gets loopback only, no DNS responder): the task's
    /etc/resolv.conf from its ``--dns``, ``--dns-search`` and ``--dns-option``, as docker writes one from
    them. Its own servers, else the host's minus loopback ones (the host's own resolver, which the task's
    loopback is not); None when the spec sets none of the three (the image's resolv.conf stays)."""
    if not (dns.nameservers or dns.search or dns.options):
        return None
    servers = list(dns.nameservers) or [s for s in host_nameservers if not ipaddress.ip_address(s).is_loopback]
    lines = [f"nameserver {s}" for s in servers]
    if dns.search:
        lines.append("search " + " ".join(dns.search))
    if dns.options:
        lines.append("options " + " ".join(dns.options))
    return ("\n".join(lines) + "\n").encode()
