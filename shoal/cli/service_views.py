"""What ``svc ls``, ``svc ps`` and ``svc inspect --pretty`` show, as pure functions of protobufs.

Kept apart from the commands so the exact columns -- ``web.2``, the ``\\_ web.2`` history lines,
"Running 5 seconds ago", ``*:8080->80/tcp`` -- are unit-tested without a manager.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from shoal import ids, rollout, units
from shoal.cli.listing import ago, mode_name, pretty_state, quote_error
from shoal.proto import control_pb2, types_pb2

ServiceSpec = types_pb2.ServiceSpec
TaskState = types_pb2.TaskState

SERVICE_HEADERS = ("ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS")
TASK_HEADERS = ("ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR")


def replicas_text(spec: types_pb2.ServiceSpec, summary: control_pb2.ServiceSummary | None) -> str:
    """docker's REPLICAS column: "2/3", "2/3 (max 1 per node)", jobs "0/1 (3/3 completed)"."""
    running = summary.running if summary else 0
    desired = summary.desired if summary else 0
    completed = summary.completed if summary else 0
    if spec.mode == ServiceSpec.REPLICATED:
        text = f"{running}/{desired}"
        if spec.placement.max_replicas_per_node:
            text += f" (max {spec.placement.max_replicas_per_node} per node)"
        return text
    if spec.mode == ServiceSpec.REPLICATED_JOB:
        total = spec.replicas if spec.HasField("replicas") else 1
        return f"{running}/{desired} ({completed}/{total} completed)"
    if spec.mode == ServiceSpec.GLOBAL_JOB:
        return f"{running}/{desired} ({completed} completed)"
    return f"{running}/{desired}"


def ports_text(ports: Iterable[types_pb2.PortConfig]) -> str:
    """docker's PORTS column: the ingress ports, ``*:8080->80/tcp, *:53->53/udp``."""
    return ", ".join(port_text(p) for p in ports if p.publish_mode == types_pb2.PortConfig.INGRESS)


def service_record(service: types_pb2.Service, summary: control_pb2.ServiceSummary | None) -> dict[str, str]:
    """One ``svc ls`` row as a JSON object (full id)."""
    spec = service.spec
    return {
        "ID": service.id,
        "Name": spec.name,
        "Mode": mode_name(spec.mode),
        "Replicas": replicas_text(spec, summary),
        "Image": spec.container.image,
        "Ports": ports_text(service.endpoint.ports or spec.ports),  # as allocated (a port left at 0 picked)
    }


def service_records(resp: control_pb2.ListServicesResponse, f: dict[str, list[str]]) -> list[dict[str, str]]:
    """``svc ls``'s rows: the services passing the filters ``f``, by name."""
    return [
        service_record(svc, resp.summaries.get(svc.id))
        for svc in sorted(resp.services, key=lambda s: s.spec.name)
        if service_matches(f, svc)
    ]


def service_matches(f: dict[str, list[str]], svc: types_pb2.Service) -> bool:
    """Whether ``svc`` passes the ``svc ls`` filters ``f`` (name and id prefixes, mode, labels)."""
    if "name" in f and not any(svc.spec.name.startswith(n) for n in f["name"]):
        return False
    if "id" in f and not any(svc.id.startswith(i) for i in f["id"]):
        return False
    mode = service_record(svc, None)["Mode"].replace(" ", "-")
    if "mode" in f and mode not in [m.lower().replace(" ", "-") for m in f["mode"]]:
        return False
    return "label" not in f or all(_match_label(dict(svc.spec.labels), w) for w in f["label"])


def _match_label(labels: dict[str, str], wanted: str) -> bool:
    key, sep, val = wanted.partition("=")
    return key in labels and (not sep or labels[key] == val)


def port_text(port: types_pb2.PortConfig) -> str:
    """How ``svc ls`` shows a port: ``*:8080->80/tcp`` (ingress) or ``8080->80/tcp`` (host mode)."""
    proto = types_pb2.PortConfig.Protocol.Name(port.protocol).lower()
    published = str(port.published_port) if port.published_port else ""
    prefix = "*:" if port.publish_mode == types_pb2.PortConfig.INGRESS else ""
    return f"{prefix}{published}->{port.target_port}/{proto}"


def service_row(rec: Mapping[str, str]) -> list[str]:
    return [ids.short(rec["ID"]), rec["Name"], rec["Mode"], rec["Replicas"], rec["Image"], rec["Ports"]]


def service_template_record(rec: Mapping[str, str]) -> dict[str, str]:
    """What ``svc ls --format`` sees: the row's fields, ``.ID`` cut short as docker's is."""
    return {**rec, "ID": ids.short(rec["ID"])}


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
            }
        )
        previous = key
    return records


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
    ]


def task_template_record(rec: Mapping[str, object], no_trunc: bool = False, table: bool = True) -> dict[str, str]:
    """What ``svc ps --format`` sees: the table's cells under docker's field names (``.ID`` short unless
    --no-trunc, ``.Error`` quoted and cut as docker's are; ``.Name`` carries the `` \\_ `` history mark only
    in a ``table`` format, as docker's does -- JSON and plain templates get the bare name)."""
    cells = task_row(rec, no_trunc)
    keys = ("ID", "Name", "Image", "Node", "DesiredState", "CurrentState", "Error")
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
    for k, v in sorted(spec.labels.items()):
        _kv(lines, 1, "Label", f"{k}={v}")
    _kv(lines, 0, "Service Mode", mode_name(spec.mode).title())
    lines.extend(update_status_lines(service))
    if spec.mode in (ServiceSpec.REPLICATED, ServiceSpec.REPLICATED_JOB):
        _kv(lines, 1, "Replicas", spec.replicas if spec.HasField("replicas") else 1)
    if spec.max_concurrent:
        _kv(lines, 1, "Max Concurrent", spec.max_concurrent)
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
    _update_section(lines, "UpdateConfig", spec.update_config)
    _update_section(lines, "RollbackConfig", spec.rollback_config)
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
    _kv(lines, 1, "Init", str(c.init).lower())
    from shoal.cli import service_views_container as container_views  # the spec rules: only for --pretty

    lines.extend(container_views.container_lines(c))
    lines.extend(container_views.mount_lines(c))
    lines.extend(container_views.log_lines(c))
    lines.extend(_resources(spec.resources))
    if spec.ports:
        lines.append("Ports:")
        for p in spec.ports:
            lines.append(f" PublishedPort = {p.published_port}")
            lines.append(f"  Protocol = {types_pb2.PortConfig.Protocol.Name(p.protocol).lower()}")
            lines.append(f"  TargetPort = {p.target_port}")
            lines.append(f"  PublishMode = {types_pb2.PortConfig.PublishMode.Name(p.publish_mode).lower()}")
    return "\n".join(lines)


def _update_section(lines: list[str], title: str, cfg: types_pb2.UpdateConfig) -> None:
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
        "Update order",
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
            _kv(out, 2, "Pids", r.pids)
    return ["Resources:", *out] if out else []
