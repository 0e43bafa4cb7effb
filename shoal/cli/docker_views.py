"""``svc inspect``, ``node inspect`` and ``task inspect`` as docker prints them, so scripts written for
docker read shoal's output: ``ID``, ``Version.Index``, ``CreatedAt`` (RFC 3339, nanoseconds),
``Spec.Name``, ``Spec.TaskTemplate.ContainerSpec.Image``, ``Spec.Mode.Replicated.Replicas``,
``Spec.EndpointSpec``, ``Endpoint.VirtualIPs``, ``Status.State`` (lower case), durations as integer
nanoseconds (``Delay``, ``Interval``), enums as docker's words (``any``, ``stop-first``).

Fields docker has no name for (and fields added to the protos later) are not dropped: ``generic``
turns any message into the same style (``snake_case`` -> ``UpperCamel``, ``*_at_ns`` -> an RFC 3339
time without the suffix, other ``*_ns`` -> integer nanoseconds without the suffix). Pure.
"""

from __future__ import annotations

import base64
import functools
import time
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from shoal import rollout
from shoal.cli.network_views import endpoint_dict, endpoint_mode_name, port_dict
from shoal.proto import types_pb2 as pb

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, what docker prints for "never"
RENAMES = {
    "id": "ID", "readonly": "ReadOnly", "cap_add": "CapabilityAdd", "cap_drop": "CapabilityDrop",
    "dns_config": "DNSConfig", "nano_cpus": "NanoCPUs", "max_replicas_per_node": "MaxReplicas",
    "network_id": "NetworkID", "virtual_ips": "VirtualIPs", "node_id": "NodeID", "service_id": "ServiceID",
    "container_id": "ContainerID", "pid": "PID", "task_id": "TaskID", "session_id": "SessionID",
}  # fmt: skip
HIDDEN = {"mac"}  # a role grant's MAC means nothing to a reader


VIEW_FIELDS = frozenset({
    "Addr", "Addresses", "Architecture", "Attachable", "Availability", "BindOptions", "CompletedAt", "Condition",
    "Config", "Constraints", "ContainerID", "ContainerSpec", "ContainerStatus", "Containers", "Created",
    "CreatedAt", "CurrentState", "Data", "Delay", "Description", "DesiredState", "Driver", "Endpoint",
    "EndpointID", "EndpointSpec", "Engine", "EngineVersion", "Err", "Error", "ExitCode", "FailureAction",
    "ForceUpdate", "Gateway", "Global", "GlobalJob", "Health", "History", "Hostname", "ID", "IPAM", "IPv4Address",
    "Id", "Image", "Index", "Ingress", "Labels", "Leader", "ManagerStatus", "MaxAttempts", "MaxConcurrent",
    "MaxFailureRatio", "MaxReplicas", "MemoryBytes", "Message", "Mode", "Monitor", "Mounts", "Name", "NanoCPUs",
    "Network", "NetworkID", "Networks", "NetworksAttachments", "Node", "NodeID", "OS", "Options", "Order", "PID",
    "Parallelism", "PendingTasks", "Placement", "Platform", "PortStatus", "Ports", "Preferences", "PreviousSpec",
    "Privileges", "Profile", "Propagation", "Protocol", "PublishMode", "PublishedPort", "Reachability", "Replicas",
    "Replicated", "ReplicatedJob", "Resources", "RestartPolicy", "Role", "RollbackConfig", "Runtime", "Scope",
    "Seccomp", "Self", "ServiceID", "ServiceName", "Services", "Slot", "Spec", "Spread", "SpreadDescriptor",
    "StartedAt", "State", "Status", "Subnet", "TargetPort", "TaskTemplate", "Timestamp", "TmpfsOptions",
    "TotalCompletions", "Type", "UpdateConfig", "UpdateStatus", "UpdatedAt", "VIPBlock", "Version", "VirtualIPs",
    "VolumeOptions",
})  # fmt: skip
"""The names the views here write themselves, beside the proto fields ``generic`` spells (``field_names``)."""


@functools.cache
def field_names() -> frozenset[str]:
    """Every field name an inspect object can have, in docker's spelling: an ``inspect --format`` field that is
    none of them is an error, as docker's is (empty fields are left out, so a missing one may just be empty)."""
    names = set(VIEW_FIELDS)
    todo = list(pb.DESCRIPTOR.message_types_by_name.values())
    while todo:
        msg = todo.pop()
        names.update(key_of(f.name) for f in msg.fields)
        todo.extend(msg.nested_types)
    return frozenset(names)


def iso(ns: int) -> str:
    """Unix nanoseconds -> ``2024-05-01T10:00:00.123456789Z`` (docker's time format); 0 -> Go's zero time."""
    if not ns:
        return ZERO_TIME
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def node_addr(node: pb.Node) -> str:
    """A node's ``Status.Addr`` as docker shows it: its IP, without the port its session came from
    (the manager records the peer, ``172.30.0.3:52706``, for a node that did not give its address)."""
    addr = node.status.addr or node.description.addr
    if addr.startswith("["):  # [v6]:port
        return addr[1:].partition("]")[0]
    host, sep, port = addr.rpartition(":")
    return host if sep and port.isdigit() and ":" not in host else addr


INITIALISMS = {"id": "ID", "ids": "IDs", "ip": "IP", "ips": "IPs", "uid": "UID", "gid": "GID", "dns": "DNS",
               "cpu": "CPU", "cpus": "CPUs", "vip": "VIP", "tls": "TLS", "url": "URL", "pem": "PEM"}  # fmt: skip


def key_of(name: str) -> str:
    """A proto field name as docker would spell it: ``max_attempts`` -> ``MaxAttempts``, Go's initialisms in
    capitals (``secret_id`` -> ``SecretID``, ``uid`` -> ``UID``), ``_ns`` dropped (``delay_ns`` -> ``Delay``)."""
    if name in RENAMES:
        return RENAMES[name]
    if name.endswith("_ns"):
        name = name[:-3]
    return "".join(INITIALISMS.get(part, part[:1].upper() + part[1:]) for part in name.split("_"))


def enum_word(field: Any, number: int) -> str:
    """``REPLICATED_JOB`` -> ``replicated-job``, ``HEALTH_HEALTHY`` -> ``healthy`` (docker's enum words).

    ``field`` is the enum field's descriptor (``Msg.DESCRIPTOR.fields_by_name[...]``)."""
    value = field.enum_type.values_by_number.get(number) if field.enum_type is not None else None
    name = value.name if value is not None else str(number)
    return name.removeprefix("HEALTH_").lower().replace("_", "-")


def _value(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return generic(value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return enum_word(field, value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return value.decode("utf-8", "replace")
    if field.name.endswith("at_ns") or field.name == "timestamp_ns":
        return iso(value)
    return value


def generic(msg: Message) -> dict[str, Any]:
    """Every set field of ``msg`` in docker's style (see the module doc)."""
    out: dict[str, Any] = {}
    for field, value in msg.ListFields():
        if field.name in HIDDEN:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            vf = field.message_type.fields_by_name["value"]
            out[key_of(field.name)] = {k: _value(vf, v) for k, v in value.items()}
        elif field.is_repeated:
            out[key_of(field.name)] = [_value(field, v) for v in value]
        else:
            out[key_of(field.name)] = _value(field, value)
    return out


def _rest(msg: Message, known: set[str]) -> dict[str, Any]:
    """The fields of ``msg`` not in ``known``, in docker's style."""
    return {k: v for k, v in generic(msg).items() if k not in {key_of(n) for n in known}}


def _meta(obj_id: str, meta: pb.Meta) -> dict[str, Any]:
    return {
        "ID": obj_id,
        "Version": {"Index": meta.version},
        "CreatedAt": iso(meta.created_at_ns),
        "UpdatedAt": iso(meta.updated_at_ns),
    }


def mode_doc(spec: pb.ServiceSpec) -> dict[str, Any]:
    replicas = spec.replicas if spec.HasField("replicas") else 1
    if spec.mode == pb.ServiceSpec.GLOBAL:
        return {"Global": {}}
    if spec.mode == pb.ServiceSpec.REPLICATED_JOB:
        return {"ReplicatedJob": {"MaxConcurrent": spec.max_concurrent or 1, "TotalCompletions": replicas}}
    if spec.mode == pb.ServiceSpec.GLOBAL_JOB:
        return {"GlobalJob": {}}
    return {"Replicated": {"Replicas": replicas}}


def update_doc(cfg: pb.UpdateConfig) -> dict[str, Any]:
    """docker's UpdateConfig/RollbackConfig, with swarm's defaults filled in."""
    return {
        **generic(cfg),
        "Parallelism": cfg.parallelism if cfg.HasField("parallelism") else 1,
        "Delay": cfg.delay_ns,
        "FailureAction": enum_word(cfg.DESCRIPTOR.fields_by_name["failure_action"], cfg.failure_action),
        "Monitor": cfg.monitor_ns if cfg.HasField("monitor_ns") else 5_000_000_000,
        "MaxFailureRatio": cfg.max_failure_ratio,
        "Order": enum_word(cfg.DESCRIPTOR.fields_by_name["order"], cfg.order),
    }


MOUNT_FLAT = {"volume_nocopy", "volume_subpath", "tmpfs_size_bytes", "tmpfs_mode", "bind_propagation"}


def mount_doc(m: pb.Mount) -> dict[str, Any]:
    """docker's Mount: Type always named (volume is proto's zero value), options nested as docker nests them."""
    out: dict[str, Any] = {"Type": enum_word(m.DESCRIPTOR.fields_by_name["type"], m.type)}
    out.update(_rest(m, MOUNT_FLAT | {"type"}))
    if m.bind_propagation:
        out["BindOptions"] = {"Propagation": m.bind_propagation}
    volume = {k: v for k, v in (("NoCopy", m.volume_nocopy), ("Subpath", m.volume_subpath)) if v}
    if volume:
        out["VolumeOptions"] = volume
    tmpfs = {k: v for k, v in (("SizeBytes", m.tmpfs_size_bytes), ("Mode", m.tmpfs_mode)) if v}
    if tmpfs:
        out["TmpfsOptions"] = tmpfs
    return out


def privileges_doc(seccomp_profile: str) -> dict[str, Any]:
    """docker's ``Privileges.Seccomp``: ``unconfined``, or ``custom`` with the profile (bytes: base64 in JSON)."""
    if seccomp_profile == "unconfined":
        return {"Seccomp": {"Mode": "unconfined"}}
    return {"Seccomp": {"Mode": "custom", "Profile": base64.b64encode(seccomp_profile.encode()).decode()}}


def container_doc(c: pb.ContainerSpec) -> dict[str, Any]:
    """docker's ``ContainerSpec``: every field under docker's name (``Mounts[].VolumeOptions.NoCopy``,
    ``Secrets[].File.UID``, ``Privileges.Seccomp``, ``DNSConfig``...)."""
    out: dict[str, Any] = {"Image": c.image, **_rest(c, {"mounts", "seccomp_profile"})}
    if c.seccomp_profile:
        out["Privileges"] = privileges_doc(c.seccomp_profile)
    if c.mounts:
        out["Mounts"] = [mount_doc(m) for m in c.mounts]
    return out


def task_template(spec: pb.ServiceSpec) -> dict[str, Any]:
    """docker's ``TaskTemplate`` (a task's ``Spec``): container, resources, restart policy, placement, networks."""
    rp = spec.restart_policy
    pl = spec.placement
    placement: dict[str, Any] = {}
    if pl.constraints:
        placement["Constraints"] = list(pl.constraints)
    if pl.preferences:
        placement["Preferences"] = [{"Spread": {"SpreadDescriptor": p.spread}} for p in pl.preferences]
    if pl.max_replicas_per_node:
        placement["MaxReplicas"] = pl.max_replicas_per_node
    out: dict[str, Any] = {
        "ContainerSpec": container_doc(spec.container),
        "Resources": generic(spec.resources),
        "RestartPolicy": {
            **generic(rp),
            "Condition": enum_word(rp.DESCRIPTOR.fields_by_name["condition"], rp.condition),
            "Delay": rp.delay_ns if rp.HasField("delay_ns") else 5_000_000_000,
            "MaxAttempts": rp.max_attempts,
        },
        "Placement": placement,
    }
    if spec.networks:
        out["Networks"] = [generic(n) for n in spec.networks]
    out["ForceUpdate"] = spec.force_update  # `svc update --force` counts up
    out["Runtime"] = "container"
    return out


SPEC_FIELDS = {"name", "labels", "container", "resources", "placement", "restart_policy", "update_config", "rollback_config",
               "mode", "replicas", "max_concurrent", "ports", "networks", "endpoint_mode", "force_update"}  # fmt: skip


def spec_doc(spec: pb.ServiceSpec) -> dict[str, Any]:
    """docker's ``ServiceSpec``; shoal's own fields (``Rebalance``, ``DependsOn``...) follow docker's."""
    endpoint: dict[str, Any] = {"Mode": endpoint_mode_name(spec.endpoint_mode)}
    if spec.ports:
        endpoint["Ports"] = [port_dict(p) for p in spec.ports]
    return {
        "Name": spec.name,
        "Labels": dict(spec.labels),
        "TaskTemplate": task_template(spec),
        "Mode": mode_doc(spec),
        "UpdateConfig": update_doc(spec.update_config),
        "RollbackConfig": update_doc(spec.rollback_config),
        "EndpointSpec": endpoint,
        **_rest(spec, SPEC_FIELDS),
    }


def update_status_dict(service: pb.Service) -> dict[str, str] | None:
    """docker's ``UpdateStatus``: State, StartedAt, CompletedAt, Message (None: no update ran)."""
    st = service.update_status
    if not st.state:
        return None
    out = {"State": rollout.state_word(st)}
    if st.started_at_ns:
        out["StartedAt"] = iso(st.started_at_ns)
    if st.completed_at_ns:
        out["CompletedAt"] = iso(st.completed_at_ns)
    out["Message"] = st.message
    return out


def service_doc(svc: pb.Service, pending: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """``svc inspect``: docker's Service, plus ``PendingTasks`` (why tasks wait for a node; shoal's own)."""
    out = {**_meta(svc.id, svc.meta), "Spec": spec_doc(svc.spec)}
    if svc.HasField("previous_spec"):
        out["PreviousSpec"] = spec_doc(svc.previous_spec)
    out["Endpoint"] = endpoint_dict(svc)
    out.update(_rest(svc, {"id", "meta", "spec", "previous_spec", "endpoint", "update_status"}))
    if (status := update_status_dict(svc)) is not None:
        out["UpdateStatus"] = (
            status  # docker's words and ISO times (State "rollback_completed", StartedAt...)
        )
    out["PendingTasks"] = pending or {}
    return out


def task_doc(task: pb.Task, status: pb.TaskStatus | None = None) -> dict[str, Any]:
    """``task inspect``: docker's Task (``docker inspect TASK``)."""
    st = status or task.status
    state_field = st.DESCRIPTOR.fields_by_name["state"]
    status_doc: dict[str, Any] = {
        "Timestamp": iso(st.timestamp_ns),
        "State": enum_word(state_field, st.state),
        "Message": st.message,
    }
    if st.err:
        status_doc["Err"] = st.err
    status_doc["ContainerStatus"] = {"ContainerID": st.container_id, "PID": st.pid, "ExitCode": st.exit_code}
    ran = st.state >= pb.RUNNING and st.state != pb.REJECTED  # docker's PortStatus: the host-mode ports it bound
    host = [port_dict(p) for p in task.spec.ports if ran and p.publish_mode == pb.PortConfig.HOST and p.published_port]
    status_doc["PortStatus"] = {"Ports": host} if host else {}
    if st.health:
        status_doc["Health"] = enum_word(st.DESCRIPTOR.fields_by_name["health"], st.health)
    out = {
        **_meta(task.id, task.meta),
        "Labels": {},
        "Spec": task_template(task.spec),
        "ServiceID": task.service_id,
        "Slot": task.slot,
        "NodeID": task.node_id,
        "Status": status_doc,
        "DesiredState": enum_word(state_field, task.desired_state),
    }
    if task.networks:
        out["NetworksAttachments"] = [
            {"Network": {"ID": n.network_id, "Spec": {"Name": n.network}}, "Addresses": [n.address]}
            for n in task.networks
        ]
    out.update(
        _rest(
            task,
            {"id", "meta", "spec", "service_id", "slot", "node_id", "status", "desired_state", "networks"},
        )
    )
    return out


def node_doc(node: pb.Node) -> dict[str, Any]:
    """``node inspect``: docker's Node."""
    d = node.description
    spec = node.spec
    out: dict[str, Any] = {
        **_meta(node.id, node.meta),
        "Spec": {
            "Labels": dict(spec.labels),
            "Role": enum_word(spec.DESCRIPTOR.fields_by_name["role"], spec.role),
            "Availability": enum_word(spec.DESCRIPTOR.fields_by_name["availability"], spec.availability),
        },
        "Description": {
            "Hostname": d.hostname,
            "Platform": {"Architecture": d.platform_arch, "OS": d.platform_os},
            "Resources": {"NanoCPUs": d.nano_cpus, "MemoryBytes": d.memory_bytes},
            "Engine": {
                "EngineVersion": d.engine_labels.get("shoal.version", ""),
                "Labels": dict(d.engine_labels),
            },
        },
        "Status": {
            "State": enum_word(node.status.DESCRIPTOR.fields_by_name["state"], node.status.state),
            "Message": node.status.message,
            "Addr": node_addr(node),
        },
    }
    if node.HasField("manager_status") or spec.role == pb.NodeSpec.MANAGER:
        ms = node.manager_status
        out["ManagerStatus"] = {
            "Leader": ms.leader,
            "Reachability": ms.reachability or "reachable",
            "Addr": ms.addr,
        }
    out.update(_rest(node, {"id", "meta", "spec", "description", "status", "manager_status"}))
    return out
