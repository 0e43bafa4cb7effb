"""What ``svc ls``, ``svc ps`` and ``svc inspect --pretty`` show, as pure functions of protobufs.

Kept apart from the commands so the exact columns -- ``web.2``, the ``\\_ web.2`` history lines,
"Running 5 seconds ago", ``*:8080->80/tcp`` -- are unit-tested without a manager.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from shoal import ids, rollout, units
from shoal.cli import service_rows
from shoal.cli.listing import ago, mode_name, pretty_state, quote_error
from shoal.cli.service_rows import (  # noqa: F401  (SERVICE_HEADERS, service_row, ...: re-exported for the commands)
    SERVICE_HEADERS,
    Port,
    ServiceView,
    Summary,
    service_row,
    service_template_record,
)
from shoal.proto import control_pb2, types_pb2

ServiceSpec = types_pb2.ServiceSpec
TaskState = types_pb2.TaskState

TASK_HEADERS = ("ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR", "PORTS")


def service_view(service: types_pb2.Service) -> ServiceView:
    """What ``svc ls`` reads of a Service (service_rows.py prints it; svclswire.py reads the same from bytes)."""
    spec = service.spec
    view = ServiceView()
    view.id, view.name, view.labels, view.mode = service.id, spec.name, dict(spec.labels), spec.mode
    view.image, view.max_per_node = spec.container.image, spec.placement.max_replicas_per_node
    view.replicas = spec.replicas if spec.HasField("replicas") else None
    view.ports = [_port(p) for p in spec.ports]
    view.endpoint_ports = [_port(p) for p in service.endpoint.ports]
    return view


def _port(p: types_pb2.PortConfig) -> Port:
    return p.protocol, p.target_port, p.published_port, p.publish_mode


def _summary(summary: control_pb2.ServiceSummary | None) -> Summary | None:
    return None if summary is None else (summary.running, summary.desired, summary.completed)


def replicas_text(spec: types_pb2.ServiceSpec, summary: control_pb2.ServiceSummary | None) -> str:
    """docker's REPLICAS column (service_rows.replicas_text) of a spec."""
    return service_rows.replicas_text(service_view(types_pb2.Service(spec=spec)), _summary(summary))


def port_text(port: types_pb2.PortConfig) -> str:
    """How ``svc ls`` shows a port: ``*:8080->80/tcp`` (ingress) or ``8080->80/tcp`` (host mode)."""
    return service_rows.port_text(_port(port))


def service_record(service: types_pb2.Service, summary: control_pb2.ServiceSummary | None) -> dict[str, str]:
    """One ``svc ls`` row as a JSON object (full id)."""
    return service_rows.record(service_view(service), _summary(summary))


def service_records(resp: control_pb2.ListServicesResponse, f: dict[str, list[str]]) -> list[dict[str, str]]:
    """``svc ls``'s rows: the services passing the filters ``f``, by name."""
    summaries = {k: (v.running, v.desired, v.completed) for k, v in resp.summaries.items()}
    return service_rows.records([service_view(s) for s in resp.services], summaries, f)


def service_matches(f: dict[str, list[str]], svc: types_pb2.Service) -> bool:
    """Whether ``svc`` passes the ``svc ls`` filters ``f`` (name and id prefixes, mode, labels)."""
    return service_rows.matches(f, service_view(svc))


def task_name(task: types_pb2.Task) -> str:
    """``web.2`` for a replicated task, ``web.<node id>`` for a global one."""
    service = task.service_name or ids.short(task.service_id)
    if task.slot:
        return f"{service}.{task.slot}"
    return f"{service}.{task.node_id}" if task.node_id else service


def _task_time(task: types_pb2.Task) -> int:
    return task.meta.created_at_ns or task.status.timestamp_ns


def sort_tasks(tasks: Iterable[types_pb2.Task]) -> list[types_pb2.Task]:
    """By service, then slot (or node), newest first within a slot -- docker's ps order."""
    return sorted(
        tasks,
        key=lambda t: (
            t.service_name,
            t.service_id,
            t.slot == 0,
            t.slot,
            t.node_id if not t.slot else "",
            -_task_time(t),
        ),
    )


def task_records(
    tasks: Iterable[types_pb2.Task],
    node_names: Mapping[str, str],
    no_trunc: bool = False,
    now: float | None = None,
) -> list[dict[str, str]]:
    """``svc ps`` rows as JSON objects, sorted; "History" is true for the older tasks of a slot.

    The JSON keeps the full, unquoted error; ``task_row`` quotes and truncates it for the table.
    """
    now = time.time() if now is None else now
    records = []
    previous = None
    for t in sort_tasks(tasks):
        name = task_name(t)
        key = (t.service_id, name)
        state = pretty_state(t.status.state)
        current = f"{state} {ago(t.status.timestamp_ns, now)}".rstrip()
        if (
            t.status.health and t.status.state == types_pb2.RUNNING
        ):  # docker: "Running 5 seconds ago (healthy)"
            current += f" ({types_pb2.Health.Name(t.status.health).removeprefix('HEALTH_').lower()})"
        records.append(
            {
                "ID": t.id,
                "Name": f"{name}.{t.id}" if no_trunc else name,
                "History": key == previous,
                "Image": t.spec.container.image,
                "Node": node_names.get(t.node_id, t.node_id),
                "DesiredState": pretty_state(t.desired_state),
                "CurrentState": current,
                "Error": t.status.err,
                "Ports": task_ports(t),
            }
        )
        previous = key
    return records


def task_ports(t: types_pb2.Task) -> str:
    """docker's PORTS of a task: its host-mode published ports once its container ran (``*:8080->80/tcp``);
    ingress ports are the service's, on every node, and not shown per task (as docker's)."""
    ran = t.status.state >= types_pb2.RUNNING and t.status.state != types_pb2.REJECTED
    host = [p for p in t.spec.ports if p.publish_mode == types_pb2.PortConfig.HOST and p.published_port] if ran else []
    return ",".join(f"*:{p.published_port}->{p.target_port}/{types_pb2.PortConfig.Protocol.Name(p.protocol).lower()}" for p in host)


def keep_records(records: Iterable[dict[str, Any]], keep: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The ``records`` that ``keep`` accepts (``--filter``), "History" marked anew among them: docker filters
    before it indents a slot's older tasks, so the first task of a slot that is shown carries its name."""
    out: list[dict[str, Any]] = []
    previous = None
    for r in records:
        if not keep(r):
            continue
        key = str(r["Name"]).removesuffix("." + str(r["ID"]))
        r["History"] = key == previous
        previous = key
        out.append(r)
    return out


def pending_reasons(tasks: Iterable[types_pb2.Task]) -> dict[str, list[str]]:
    """Why tasks wait for a node: the scheduler's full explanation -> the task names it applies to."""
    out: dict[str, list[str]] = {}
    for t in sort_tasks(tasks):
        if t.status.state == types_pb2.PENDING and t.desired_state == types_pb2.RUNNING and t.status.err:
            out.setdefault(t.status.err, []).append(task_name(t))
    return out


def why_lines(tasks: Iterable[types_pb2.Task]) -> list[str]:
    """``svc ps --why``: one line per distinct reason, naming the pending tasks."""
    return [f"{', '.join(names)}: {why}" for why, names in pending_reasons(tasks).items()]


def task_row(rec: Mapping[str, object], no_trunc: bool = False) -> list[str]:
    name = str(rec["Name"])
    if rec["History"]:
        name = f" \\_ {name}"
    task_id = str(rec["ID"]) if no_trunc else ids.short(str(rec["ID"]))
    error = quote_error(str(rec["Error"]), trunc=not no_trunc)
    return [
        task_id,
        name,
        str(rec["Image"]),
        str(rec["Node"]),
        str(rec["DesiredState"]),
        str(rec["CurrentState"]),
        error,
        str(rec.get("Ports", "")),
    ]


def task_template_record(rec: Mapping[str, object], no_trunc: bool = False, table: bool = True) -> dict[str, str]:
    """What ``svc ps --format`` sees: the table's cells under docker's field names (``.ID`` short unless
    --no-trunc, ``.Error`` quoted and cut as docker's are; ``.Name`` carries the `` \\_ `` history mark only
    in a ``table`` format, as docker's does -- JSON and plain templates get the bare name)."""
    cells = task_row(rec, no_trunc)
    keys = ("ID", "Name", "Image", "Node", "DesiredState", "CurrentState", "Error", "Ports")
    view = dict(zip(keys, cells, strict=True))
    if not table:
        view["Name"] = str(rec["Name"])
    return view


def task_view(no_trunc: bool, fmt: str) -> Callable[[Mapping[str, object]], dict[str, str]]:
    """The ``template_record`` of a task list (``svc ps``, ``node ps``, ``stack ps``) for ``fmt``."""
    table = fmt.strip()[:5].lower() == "table"
    return lambda rec: task_template_record(rec, no_trunc, table)


def update_status_lines(service: types_pb2.Service, now: float | None = None) -> list[str]:
    """The ``UpdateStatus:`` section of ``svc inspect --pretty`` (docker's layout)."""
    st = service.update_status
    if not st.state:
        return []
    lines = ["UpdateStatus:"]
    _kv(lines, 1, "State", rollout.state_word(st))
    if st.started_at_ns:
        _kv(lines, 1, "Started", ago(st.started_at_ns, now))
    if st.completed_at_ns:
        _kv(lines, 1, "Completed", ago(st.completed_at_ns, now))
    _kv(lines, 1, "Message", st.message)
    return lines


def _kv(lines: list[str], indent: int, key: str, value: object, width: int = 16) -> None:
    label = " " * indent + key + ":"
    lines.append(f"{label:<{width}}{value}")


def pretty_service(service: types_pb2.Service) -> str:
    """The human summary ``svc inspect --pretty`` prints (after docker's layout)."""
    spec = service.spec
    c = spec.container
    lines: list[str] = []
    _kv(lines, 0, "ID", service.id)
    _kv(lines, 0, "Name", spec.name)
    if spec.labels:
        lines.append("Labels:")
        lines.extend(f" {k}={v}" if v else f" {k}" for k, v in sorted(spec.labels.items()))
    _kv(lines, 0, "Service Mode", mode_name(spec.mode).title())
    if spec.mode in (ServiceSpec.REPLICATED, ServiceSpec.REPLICATED_JOB):
        _kv(lines, 1, "Replicas", spec.replicas if spec.HasField("replicas") else 1)
    if spec.max_concurrent:
        _kv(lines, 1, "Max Concurrent", spec.max_concurrent)
    lines.extend(update_status_lines(service))
    pl = spec.placement
    if pl.constraints or pl.preferences or pl.max_replicas_per_node:
        lines.append("Placement:")
        if pl.constraints:
            _kv(lines, 1, "Constraints", "[" + " ".join(pl.constraints) + "]")
        if pl.preferences:
            _kv(lines, 1, "Preferences", "[" + " ".join(f"spread={p.spread}" for p in pl.preferences) + "]")
        if pl.max_replicas_per_node:
            _kv(lines, 1, "Max Replicas Per Node", pl.max_replicas_per_node, width=24)
    rp = spec.restart_policy
    lines.append("RestartPolicy:")
    _kv(lines, 1, "Condition", types_pb2.RestartPolicy.Condition.Name(rp.condition).lower().replace("_", "-"))
    _kv(lines, 1, "Delay", units.format_duration(rp.delay_ns if rp.HasField("delay_ns") else 5 * 10**9))
    _kv(lines, 1, "Max Attempts", rp.max_attempts)
    _update_section(lines, "UpdateConfig", spec.update_config, "Update order")
    _update_section(lines, "RollbackConfig", spec.rollback_config, "Rollback order")
    lines.append("ContainerSpec:")
    _kv(lines, 1, "Image", c.image)
    if c.command:
        _kv(lines, 1, "Command", " ".join(c.command))
    if c.args:
        _kv(lines, 1, "Args", " ".join(c.args))
    if c.env:
        _kv(lines, 1, "Env", " ".join(c.env))
    if c.dir:
        _kv(lines, 1, "Dir", c.dir)
    if c.user:
        _kv(lines, 1, "User", c.user)
    if c.HasField("init"):  # docker's template: only when --init was given (even false)
        _kv(lines, 1, "Init", str(c.init).lower())
    from shoal.cli import service_views_container as container_views  # the spec rules: only for --pretty

    lines.extend(container_views.container_lines(c))
    lines.extend(container_views.mount_lines(c))
    lines.extend(container_views.file_lines(c))
    lines.extend(container_views.log_lines(c))
    lines.extend(_resources(spec.resources))
    lines.extend(_port_lines(spec.ports))
    lines.extend(container_views.health_lines(c.healthcheck))
    return "\n".join(lines)


def _port_lines(ports: Sequence[types_pb2.PortConfig]) -> list[str]:
    out = ["Ports:"] if ports else []
    for p in ports:
        out.append(f" PublishedPort = {p.published_port}")
        out.append(f"  Protocol = {types_pb2.PortConfig.Protocol.Name(p.protocol).lower()}")
        out.append(f"  TargetPort = {p.target_port}")
        out.append(f"  PublishMode = {types_pb2.PortConfig.PublishMode.Name(p.publish_mode).lower()}")
    return out


def _update_section(lines: list[str], title: str, cfg: types_pb2.UpdateConfig, order: str) -> None:
    lines.append(f"{title}:")
    _kv(lines, 1, "Parallelism", cfg.parallelism if cfg.HasField("parallelism") else 1)
    if cfg.delay_ns:
        _kv(lines, 1, "Delay", units.format_duration(cfg.delay_ns))
    _kv(lines, 1, "On failure", types_pb2.UpdateConfig.FailureAction.Name(cfg.failure_action).lower())
    _kv(
        lines,
        1,
        "Monitoring Period",
        units.format_duration(cfg.monitor_ns if cfg.HasField("monitor_ns") else 5 * 10**9),
        width=20,
    )
    _kv(lines, 1, "Max failure ratio", f"{cfg.max_failure_ratio:g}", width=20)
    _kv(
        lines,
        1,
        order,
        types_pb2.UpdateConfig.Order.Name(cfg.order).lower().replace("_", "-"),
        width=20,
    )


def _resources(res: types_pb2.ResourceRequirements) -> Sequence[str]:
    out: list[str] = []
    for title, r in (("Reservations", res.reservations), ("Limits", res.limits)):
        if not (r.nano_cpus or r.memory_bytes or r.pids):
            continue
        out.append(f" {title}:")
        if r.nano_cpus:
            _kv(out, 2, "CPU", f"{r.nano_cpus / 1e9:g}")
        if r.memory_bytes:
            _kv(out, 2, "Memory", units.format_bytes(r.memory_bytes))
        if r.pids:
            _kv(out, 2, "PIDs", r.pids)
    return ["Resources:", *out] if out else []
