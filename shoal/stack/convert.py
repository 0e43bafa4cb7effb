"""A loaded stack turned into shoal's service specs plus the plan objects for the rest.

Names follow docker: services ``NAME_web``, networks ``NAME_front`` (the implicit one is
``NAME_default``), volumes, secrets and configs ``NAME_x``, unless the file gives ``name:`` or the
object is ``external``. Services, their containers and every object the stack creates carry the
label ``com.docker.stack.namespace=NAME``. Compose's ``command`` is the image's CMD (``args``) and
``entrypoint`` its ENTRYPOINT (``command``), as in docker.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from shoal import spec as specs
from shoal.proto import types_pb2 as pb
from shoal.stack import IMAGE_LABEL, NAMESPACE_LABEL
from shoal.stack.errors import Path, Problem, StackError
from shoal.stack.model_deploy import Deploy
from shoal.stack.model_file import ComposeFile
from shoal.stack.model_service import Healthcheck, Service
from shoal.stack.objects import (
    ContainerExtras,
    MountPlan,
    NetworkAttachment,
    ServicePlan,
    StackPlan,
    file_refs,
    mounts,
    network_attachments,
    stack_objects,
)
from shoal.stack.yamlfile import Marks

NAMESPACE_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
SERVICE_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
MODES = {
    "replicated": pb.ServiceSpec.REPLICATED,
    "global": pb.ServiceSpec.GLOBAL,
    "replicated-job": pb.ServiceSpec.REPLICATED_JOB,
    "global-job": pb.ServiceSpec.GLOBAL_JOB,
}
CONDITIONS = {"any": pb.RestartPolicy.ANY, "none": pb.RestartPolicy.NONE, "on-failure": pb.RestartPolicy.ON_FAILURE}
FAILURE_ACTIONS = {"pause": pb.UpdateConfig.PAUSE, "continue": pb.UpdateConfig.CONTINUE, "rollback": pb.UpdateConfig.ROLLBACK}
DEPENDENCY_CONDITIONS = {
    "service_started": pb.ServiceDependency.STARTED,
    "service_healthy": pb.ServiceDependency.HEALTHY,
    "service_completed_successfully": pb.ServiceDependency.COMPLETED_SUCCESSFULLY,
}
ORDERS = {"stop-first": pb.UpdateConfig.STOP_FIRST, "start-first": pb.UpdateConfig.START_FIRST}
PROTOCOLS = {"tcp": pb.PortConfig.TCP, "udp": pb.PortConfig.UDP, "sctp": pb.PortConfig.SCTP}


_DEPLOY_FIELDS = frozenset({"resources", "placement", "restart_policy", "update_config", "rollback_config", "replicas", "mode"})
_RENAMED = {"env": ("environment",), "ports": ("ports",), "name": (), "mounts": ("volumes",), "groups": ("group_add",),
            "dns_option": ("dns_opt",), "workdir": ("working_dir",), "log_options": ("logging", "options")}


def spec_path(field: str) -> Path:
    """Where a ServiceSpec field (as ``shoal.spec`` names it) was written in a compose service."""
    parts = tuple(field.split("."))
    if parts[0] in _DEPLOY_FIELDS:
        return ("deploy", *parts)
    return _RENAMED.get(parts[0], parts)


def check_specs(plan: StackPlan, marks: Marks | None) -> None:
    """Run every service spec through the manager's own validation (``shoal.spec``) before anything
    is sent; each refusal names the compose key it came from."""
    problems = []
    for sp in plan.services.values():
        try:
            specs.validate(sp.spec)
        except specs.SpecError as exc:
            path = ("services", sp.key, *spec_path(exc.field))
            problems.append(Problem(marks.value(path) if marks else None, path, exc.message))
    if problems:
        raise StackError(problems)


def convert_stack(compose: ComposeFile, namespace: str, marks: Marks | None = None) -> StackPlan:
    """The plan for deploying ``compose`` as stack ``namespace``; StackError on invalid names and
    on specs the manager would refuse (placed with ``marks`` when given)."""
    problems = []
    if not NAMESPACE_RE.fullmatch(namespace):
        problems.append(Problem(None, (), f"invalid stack name {namespace!r}: use letters, digits, '_', '.' or '-', starting with a letter or digit"))
    for key in compose.services:
        full = f"{namespace}_{key}"
        if not SERVICE_NAME_RE.fullmatch(full):
            problems.append(Problem(None, ("services", key), f"service name {full!r} must be 1-63 letters, digits, '-', '_' or '.'"))
    if problems:
        raise StackError(problems)
    plan = StackPlan(namespace, objects=stack_objects(compose, namespace))
    for key, svc in compose.services.items():
        full = f"{namespace}_{key}"
        attachments = network_attachments(compose, namespace, svc, key)
        service_mounts = mounts(compose, namespace, svc)
        spec = service_spec(namespace, key, svc, attachments)
        spec.container.mounts.extend(mount_spec(m) for m in service_mounts)
        plan.services[full] = ServicePlan(
            key=key,
            spec=spec,
            networks=attachments,
            mounts=service_mounts,
            secrets=file_refs(compose.secrets, namespace, svc.secrets, "/run/secrets/"),
            configs=file_refs(compose.configs, namespace, svc.configs, "/"),
            extras=_extras(svc),
            depends_on={f"{namespace}_{dep}": d.condition for dep, d in svc.depends_on.items()},
        )
        for dep, cond in sorted(plan.services[full].depends_on.items()):
            plan.services[full].spec.depends_on.add(service=dep, condition=DEPENDENCY_CONDITIONS[cond])
        add_file_refs(plan.services[full])
    check_specs(plan, marks)
    return plan


def add_file_refs(sp: ServicePlan) -> None:
    """The service's secrets and configs as references in its spec (by full name; the manager resolves ids)."""
    for ref in sp.secrets:
        sp.spec.container.secrets.add(secret_name=ref.name, file=pb.FileTarget(name=ref.target, uid=ref.uid, gid=ref.gid, mode=ref.mode))
    for ref in sp.configs:
        sp.spec.container.configs.add(config_name=ref.name, file=pb.FileTarget(name=ref.target, uid=ref.uid, gid=ref.gid, mode=ref.mode))


def service_spec(namespace: str, key: str, svc: Service, networks: Sequence[NetworkAttachment] = ()) -> pb.ServiceSpec:
    """The ServiceSpec for one compose service (no defaults filled in: the manager does that).

    ``networks`` are the service's attachments by full network name (the control API stores ids).
    """
    deploy = svc.deploy or Deploy()
    spec = pb.ServiceSpec(name=f"{namespace}_{key}", mode=MODES[deploy.mode or "replicated"])
    spec.labels.update(deploy.labels)
    spec.labels[NAMESPACE_LABEL] = namespace
    spec.labels[IMAGE_LABEL] = svc.image or ""
    if deploy.replicas is not None:
        spec.replicas = deploy.replicas
    c = spec.container
    c.image = svc.image or ""
    c.command.extend(svc.entrypoint or [])
    c.args.extend(svc.command or [])
    c.env.extend(sorted(f"{k}={v}" for k, v in svc.environment.items() if v is not None))
    c.dir, c.user, c.hostname = svc.working_dir or "", svc.user or "", svc.hostname or ""
    if svc.init is not None:  # `init: false` is kept, as docker's stack keeps it
        c.init = svc.init
    c.labels.update(svc.labels)
    c.labels[NAMESPACE_LABEL] = namespace
    if svc.stop_grace_period is not None:
        c.stop_grace_period_ns = svc.stop_grace_period
    if svc.healthcheck is not None:
        _healthcheck(svc.healthcheck, c.healthcheck)
    _container_options(svc, c)
    _deploy(deploy, spec)
    for att in networks:
        spec.networks.add(target=att.network, aliases=list(att.aliases))
    if svc.deploy and svc.deploy.endpoint_mode == "dnsrr":
        spec.endpoint_mode = pb.DNSRR
    for p in svc.port_list():
        spec.ports.add(
            name=p.name or "",
            protocol=PROTOCOLS[p.protocol or "tcp"],
            target_port=p.target,
            published_port=p.published or 0,
            publish_mode=pb.PortConfig.HOST if p.mode == "host" else pb.PortConfig.INGRESS,
        )
    return spec


def mount_spec(m: MountPlan) -> pb.Mount:
    """A stack mount as the service spec carries it (checked later with every other field)."""
    kind = {"volume": pb.Mount.VOLUME, "bind": pb.Mount.BIND, "tmpfs": pb.Mount.TMPFS}[m.type]
    return pb.Mount(type=kind, source=m.source, target=m.target, readonly=m.read_only, volume_nocopy=m.volume_nocopy,
                    tmpfs_size_bytes=m.tmpfs_size, tmpfs_mode=m.tmpfs_mode, volume_subpath=m.volume_subpath,
                    bind_propagation=m.bind_propagation)


def _container_options(svc: Service, c: pb.ContainerSpec) -> None:
    """read_only, cap_add/cap_drop, stop_signal, ulimits, sysctls, group_add, dns* and logging of a compose service."""
    c.read_only = bool(svc.read_only)
    c.cap_add.extend(svc.cap_add)
    c.cap_drop.extend(svc.cap_drop)
    c.stop_signal = svc.stop_signal or ""
    c.ulimits.extend(pb.Ulimit(name=name, soft=u.soft, hard=u.hard) for name, u in sorted(svc.ulimits.items()))
    c.sysctls.update(svc.sysctls)
    c.groups.extend(svc.group_add)
    if svc.dns or svc.dns_search or svc.dns_opt:
        c.dns_config.CopyFrom(pb.DNSConfig(nameservers=svc.dns, search=svc.dns_search, options=svc.dns_opt))
    if svc.logging is not None:
        c.log_driver = svc.logging.driver or ""
        c.log_options.update({k: v or "" for k, v in svc.logging.options.items()})


def _healthcheck(hc: Healthcheck, out: pb.HealthCheck) -> None:
    out.test.extend(["NONE"] if hc.disable else hc.test or [])
    out.interval_ns = hc.interval or 0
    out.timeout_ns = hc.timeout or 0
    out.start_period_ns = hc.start_period or 0
    out.start_interval_ns = hc.start_interval or 0
    out.retries = hc.retries or 0


def _deploy(deploy: Deploy, spec: pb.ServiceSpec) -> None:
    res = deploy.resources
    limits, reservations = (res.limits, res.reservations) if res else (None, None)
    for src, dst in ((limits, spec.resources.limits), (reservations, spec.resources.reservations)):
        if src:
            dst.nano_cpus, dst.memory_bytes = src.cpus or 0, src.memory or 0
            dst.pids = getattr(src, "pids", None) or 0
    if deploy.placement:
        spec.placement.constraints.extend(deploy.placement.constraints)
        spec.placement.preferences.extend(pb.PlacementPreference(spread=p.spread) for p in deploy.placement.preferences)
        spec.placement.max_replicas_per_node = deploy.placement.max_replicas_per_node or 0
    rp = deploy.restart_policy
    if rp:
        spec.restart_policy.condition = CONDITIONS[rp.condition or "any"]
        if rp.delay is not None:
            spec.restart_policy.delay_ns = rp.delay
        spec.restart_policy.max_attempts = rp.max_attempts or 0
        spec.restart_policy.window_ns = rp.window or 0
    for upd, out in ((deploy.update_config, spec.update_config), (deploy.rollback_config, spec.rollback_config)):
        if not upd:
            continue
        if upd.parallelism is not None:
            out.parallelism = upd.parallelism
        if upd.monitor is not None:
            out.monitor_ns = upd.monitor
        out.delay_ns = upd.delay or 0
        out.failure_action = FAILURE_ACTIONS[upd.failure_action or "pause"]
        out.max_failure_ratio = upd.max_failure_ratio or 0.0
        out.order = ORDERS[upd.order or "stop-first"]


def _extras(svc: Service) -> ContainerExtras:
    log = svc.logging
    return ContainerExtras(
        read_only=bool(svc.read_only),
        cap_add=tuple(svc.cap_add),
        cap_drop=tuple(svc.cap_drop),
        stop_signal=svc.stop_signal or "",
        ulimits=tuple((k, u.soft, u.hard) for k, u in sorted(svc.ulimits.items())),
        tmpfs=tuple(svc.tmpfs),
        log_driver=(log.driver or "") if log else "",
        log_options=tuple(sorted((k, v or "") for k, v in log.options.items())) if log else (),
        endpoint_mode=(svc.deploy.endpoint_mode if svc.deploy else None) or "vip",
    )
