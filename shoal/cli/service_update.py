"""``shoal service update`` and ``shoal service rollback``, as ``docker service update/rollback`` do.

docker's flags: ``--replicas``, ``--replicas-max-per-node``, ``--max-concurrent``, ``--endpoint-mode``,
``--stop-grace-period``, ``--image``, ``--args``, ``--constraint-add/-rm``, ``--label-add/-rm``,
``--network-add/-rm``, ``--publish-add/-rm``, the ``--update-*`` policy and shoal's
``--rebalance/--no-rebalance`` here; the task template and its policies (``--env-add``, ``--limit-*``,
``--restart-*``, ``--rollback-*``, ``--health-*``, ``--force``...) in ``service_flags_update``; the
container's own flags in ``service_flags_container``. The new spec is built by the pure
``apply_update`` from the current one, so every value is checked before anything is sent.

Running tasks are replaced by the leader's update supervisor (a rolling update by the service's
update policy; ``--rollback`` or ``svc rollback`` goes back to the previous spec by its rollback
policy), and the command follows it as docker does until it completed, paused or rolled back.
The write compares the version it read: when only the update state moved meanwhile (the supervisor
writes it) the change is applied again to what was read anew; when someone else changed the spec,
the update is refused, not merged.
"""

from __future__ import annotations

import shlex
from typing import Any

import click
import grpc

from shoal import units
from shoal.cli import client, progress, service_files
from shoal.cli import service_flags_container as container_flags
from shoal.cli import service_flags_update as update_flags
from shoal.cli.service_create import _apply, _choice, _int, _update_config, _update_options, require_mode
from shoal.cli.service_opts import FlagError, convert, parse_kv, parse_network, parse_port, parse_uint
from shoal.proto import control_pb2, types_pb2

ServiceSpec = types_pb2.ServiceSpec
CONFLICT_RETRIES = 3

UPDATE_OPTIONS = [
    click.option("--args", "args_", metavar="command", help="Service command args"),
    click.option(
        "--constraint-add", multiple=True, metavar="list", help="Add or update a placement constraint"
    ),
    click.option("--constraint-rm", multiple=True, metavar="list", help="Remove a constraint"),
    click.option("--image", metavar="string", help="Service image tag"),
    click.option("--label-add", multiple=True, metavar="list", help="Add or update a service label"),
    click.option("--label-rm", multiple=True, metavar="list", help="Remove a label by its key"),
    click.option(
        "--network-add", multiple=True, metavar="network", help="Add a network (NAME or name=NAME,alias=A)"
    ),
    click.option("--network-rm", multiple=True, metavar="list", help="Remove a network"),
    click.option("--publish-add", multiple=True, metavar="port", help="Add or update a published port"),
    click.option(
        "--publish-rm",
        multiple=True,
        metavar="port",
        help="Remove a published port by its published or target port",
    ),
    click.option("--replicas", metavar="uint", help="Number of tasks"),
    click.option("--replicas-max-per-node", metavar="uint", help="Maximum number of tasks per node (0 = unlimited)"),
    click.option("--max-concurrent", metavar="uint", help="Number of job tasks to run concurrently (default equal to --replicas)"),
    click.option("--endpoint-mode", type=_choice(["vip", "dnsrr"]), help="Endpoint mode (vip or dnsrr)"),
    click.option("--stop-grace-period", metavar="duration", help="Time to wait before force killing a container (ns|us|ms|s|m|h)"),
    *service_files.UPDATE_OPTIONS,
    click.option(
        "--rebalance/--no-rebalance",
        default=None,
        help="Move tasks onto nodes that join or come back until the spread is even (replicated mode)",
    ),
    *_update_options("update", ["pause", "continue", "rollback"]),
    *container_flags.UPDATE_OPTIONS,
    *update_flags.OPTIONS,
    click.option(
        "--no-resolve-image",
        is_flag=True,
        help="Do not check the image against the cluster's image store (use an image loaded on the nodes)",
    ),
    click.option(
        "-d", "--detach", is_flag=True, help="Exit immediately instead of waiting for the service to converge"
    ),
    click.option("-q", "--quiet", is_flag=True, help="Suppress progress output"),
]


def apply_update(current: types_pb2.ServiceSpec, o: dict[str, Any]) -> types_pb2.ServiceSpec:
    """The spec ``current`` becomes with the flags in ``o`` (click's keyword arguments); raises FlagError."""
    spec = ServiceSpec()
    spec.CopyFrom(current)
    if o.get("replicas") is not None:
        require_mode(spec.mode, "replicas")
        spec.replicas = _int("--replicas", o["replicas"])
    _counts(spec, o)
    if o.get("rebalance") is not None:
        if o["rebalance"]:
            require_mode(spec.mode, "rebalance")
        spec.rebalance = bool(o["rebalance"])
    if o.get("image") is not None:
        if not o["image"].strip():
            raise FlagError("--image", o["image"], "an image reference is needed")
        spec.container.image = o["image"].strip()
    if o.get("args_") is not None:
        try:
            spec.container.args[:] = shlex.split(o["args_"])
        except ValueError as exc:
            raise FlagError("--args", o["args_"], str(exc)) from None
    for key in o.get("label_rm") or ():
        spec.labels.pop(key, None)
    for value in o.get("label_add") or ():
        k, v = parse_kv("--label-add", value)
        spec.labels[k] = v
    _constraints(spec.placement, o.get("constraint_rm") or (), o.get("constraint_add") or ())
    _networks(spec, o.get("network_rm") or (), o.get("network_add") or (), o.get("network_ids") or {})
    _ports(spec, o.get("publish_rm") or (), o.get("publish_add") or ())
    _update_config(o, "update", spec.update_config)
    container_flags.apply_update(spec.container, o)
    update_flags.apply(spec, o)
    service_files.update_refs(spec.container, o)
    return spec


def _counts(spec: types_pb2.ServiceSpec, o: dict[str, Any]) -> None:
    """``--replicas-max-per-node``, ``--max-concurrent`` (jobs), ``--endpoint-mode`` and ``--stop-grace-period``."""
    if o.get("replicas_max_per_node") is not None:
        spec.placement.max_replicas_per_node = parse_uint("--replicas-max-per-node", o["replicas_max_per_node"])
    if o.get("max_concurrent") is not None:
        require_mode(spec.mode, "max_concurrent")
        spec.max_concurrent = parse_uint("--max-concurrent", o["max_concurrent"])
    if o.get("endpoint_mode"):
        spec.endpoint_mode = types_pb2.DNSRR if o["endpoint_mode"].lower() == "dnsrr" else types_pb2.VIP
    if o.get("stop_grace_period") is not None:
        spec.container.stop_grace_period_ns = convert("--stop-grace-period", o["stop_grace_period"], units.parse_duration)


def _networks(
    spec: types_pb2.ServiceSpec, remove: tuple[str, ...], add: tuple[str, ...], ids: dict[str, str]
) -> None:
    """Removals, then additions not there yet; ``ids`` maps names (and ids) to network ids when known."""
    gone = {ids.get(r, r) for r in remove}
    kept = [a for a in spec.networks if ids.get(a.target, a.target) not in gone]
    for value in add:
        att = parse_network(value)
        att.target = ids.get(att.target, att.target)
        if all(ids.get(k.target, k.target) != att.target for k in kept):
            kept.append(att)
    del spec.networks[:]
    spec.networks.extend(kept)


def _port_matches(port: types_pb2.PortConfig, value: str) -> bool:
    if value.strip().isdigit():  # a bare number: the published or the target port
        return int(value) in (port.published_port, port.target_port)
    return any(
        (p.target_port, p.protocol) == (port.target_port, port.protocol)
        and p.published_port in (0, port.published_port)
        for p in parse_port(value)
    )


def _ports(spec: types_pb2.ServiceSpec, remove: tuple[str, ...], add: tuple[str, ...]) -> None:
    """docker's order: removals, then additions (an added port replaces one with the same published port)."""
    kept = [p for p in spec.ports if not any(_port_matches(p, r) for r in remove)]
    for value in add:
        for new in parse_port(value):
            kept = [
                p
                for p in kept
                if not (
                    new.published_port
                    and (p.published_port, p.protocol) == (new.published_port, new.protocol)
                )
            ]
            kept.append(new)
    del spec.ports[:]
    spec.ports.extend(kept)


def _constraints(pl: types_pb2.Placement, remove: tuple[str, ...], add: tuple[str, ...]) -> None:
    """docker's order: removals first (exact text), then additions that are not there yet."""
    gone = {c.replace(" ", "") for c in remove}
    kept = [c for c in pl.constraints if c.replace(" ", "") not in gone]
    for c in add:
        if not c.strip():
            raise FlagError("--constraint-add", c, "expected a constraint such as node.labels.zone==east")
        if c.replace(" ", "") not in {k.replace(" ", "") for k in kept}:
            kept.append(c)
    pl.constraints[:] = kept


def _is_conflict(err: grpc.RpcError) -> bool:
    code = getattr(err, "code", lambda: None)()
    details = (getattr(err, "details", lambda: "")() or "").lower()
    return code == grpc.StatusCode.ABORTED or (
        code == grpc.StatusCode.FAILED_PRECONDITION and "out of sequence" in details
    )


class OutOfSequence(click.ClickException):
    """Someone else changed the service's spec since it was read: refused, never merged."""


def update_service(ref: str, o: dict[str, Any]) -> types_pb2.Service:
    """Read, change and write ``ref`` with optimistic concurrency (see the module docstring)."""
    update_flags.check_rollback_alone(o)
    stub = client.stub()
    if o.get("network_add") or o.get("network_rm"):
        nets = stub.ListNetworks(control_pb2.ListNetworksRequest()).networks
        o = {**o, "network_ids": {**{n.spec.name: n.id for n in nets}, **{n.id: n.id for n in nets}}}
    read_spec = None
    for attempt in range(CONFLICT_RETRIES + 1):
        svc = stub.GetService(control_pb2.GetServiceRequest(service_id=ref)).service
        if read_spec is not None and svc.spec != read_spec:
            raise OutOfSequence(
                f"update out of sequence: service {svc.spec.name} was changed by another update since it was read; nothing was written, run the command again"
            )
        read_spec = svc.spec
        spec = svc.spec if o.get("rollback") else apply_update(svc.spec, o)
        req = control_pb2.UpdateServiceRequest(
            service_id=svc.id, version=svc.meta.version, spec=spec, no_resolve_image=bool(o.get("no_resolve_image")), rollback=bool(o.get("rollback"))
        )  # fmt: skip
        try:
            return stub.UpdateService(req).service
        except grpc.RpcError as err:
            if not _is_conflict(err) or attempt == CONFLICT_RETRIES:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def update_options(fn: Any) -> Any:
    return _apply(UPDATE_OPTIONS, fn)


@click.command("update", short_help="Update a service")
@click.argument("service")
@update_options
def update_command(service: str, **o: Any) -> None:
    """Update SERVICE: only the flags given change; the rest of its spec stays."""
    svc = update_service(service, o)
    click.echo(service)
    if not o.get("detach"):
        progress.wait(svc.id, quiet=bool(o.get("quiet")))


@click.command("rollback", short_help="Revert changes to a service's configuration")
@click.argument("service")
@click.option(
    "-d", "--detach", is_flag=True, help="Exit immediately instead of waiting for the service to converge"
)
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output")
def rollback_command(service: str, detach: bool, quiet: bool) -> None:
    """Go back to SERVICE's previous spec, by its rollback policy (as `svc update --rollback`)."""
    svc = update_service(service, {"rollback": True, "detach": detach, "quiet": quiet})
    click.echo(service)
    if not detach:
        progress.wait(svc.id, quiet=quiet)
