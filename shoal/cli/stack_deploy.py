"""``shoal stack deploy``: create, update and (with ``--prune``) remove the services of a stack.

The stack is loaded, checked and converted before the manager is contacted; ``--dry-run`` prints
the plan (``shoal.stack.plan``) and changes nothing. Updates are sent with the version read, so a
concurrent change is refused rather than overwritten. Networks, secrets, configs and mounts are
planned but cannot be applied until the control API has them: the command says so instead of
dropping them silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from shoal.cli import client, progress
from shoal.proto import control_pb2, types_pb2
from shoal.spec import with_defaults
from shoal.stack.objects import NAMESPACE_LABEL, StackPlan
from shoal.stack.plan import CREATE, REMOVE, UPDATE, DeployPlan, format_plan, plan_deploy, spec_dict


def stack_services(namespace: str) -> list[types_pb2.Service]:
    """The services labelled as part of stack ``namespace``."""
    resp = client.stub().ListServices(control_pb2.ListServicesRequest())
    return [s for s in resp.services if s.spec.labels.get(NAMESPACE_LABEL) == namespace]


def make_plan(stack: StackPlan, running: list[types_pb2.Service], prune: bool) -> DeployPlan:
    """The deploy plan of ``stack`` against the services of the stack that exist now."""
    desired = {name: spec_dict(with_defaults(sp.spec)) for name, sp in stack.services.items()}
    current = {s.spec.name: spec_dict(s.spec) for s in running}
    return plan_deploy(stack, desired, current, prune)


def not_applied(stack: StackPlan) -> list[str]:
    """What the stack asks for that this version of shoal cannot apply yet, one line each."""
    lines = []
    for name, sp in sorted(stack.services.items()):
        missing = [what for what, present in (
            ("networks", any(not n.network.endswith("_default") for n in sp.networks)),
            ("secrets", sp.secrets), ("configs", sp.configs), ("mounts", sp.mounts),
            ("read_only", sp.extras.read_only), ("cap_add/cap_drop", sp.extras.cap_add or sp.extras.cap_drop),
            ("stop_signal", sp.extras.stop_signal), ("ulimits", sp.extras.ulimits),
            ("endpoint_mode dnsrr", sp.extras.endpoint_mode != "vip"), ("depends_on", sp.depends_on),
        ) if present]  # fmt: skip
        if missing:
            lines.append(f"{name}: {', '.join(missing)}")
    return lines


def apply_plan(stack: StackPlan, plan: DeployPlan, running: list[types_pb2.Service], resolve_image: bool) -> list[str]:
    """Carry out the service changes of ``plan``; returns the ids to wait for."""
    stub = client.stub()
    by_name = {s.spec.name: s for s in running}
    ids = []
    for change in plan.changes:
        if change.kind != "service":
            continue
        if change.action == CREATE:
            click.echo(f"Creating service {change.name}")
            req = control_pb2.CreateServiceRequest(spec=stack.services[change.name].spec, no_resolve_image=not resolve_image)
            ids.append(stub.CreateService(req).service.id)
        elif change.action == UPDATE:
            svc = by_name[change.name]
            click.echo(f"Updating service {change.name} (id: {svc.id})")
            req = control_pb2.UpdateServiceRequest(
                service_id=svc.id, version=svc.meta.version, spec=stack.services[change.name].spec, no_resolve_image=not resolve_image
            )
            ids.append(stub.UpdateService(req).service.id)
        elif change.action == REMOVE:
            click.echo(f"Removing service {change.name}")
            stub.RemoveService(control_pb2.RemoveServiceRequest(service_id=by_name[change.name].id))
    return ids


def deploy(stack: StackPlan, prune: bool, dry_run: bool, resolve_image: bool, detach: bool, quiet: bool = False) -> None:
    """``stack deploy`` once the stack is loaded: plan, print or apply, then wait unless detached."""
    running = stack_services(stack.namespace)
    plan = make_plan(stack, running, prune)
    if dry_run:
        click.echo(format_plan(plan))
        return
    pending = not_applied(stack)
    if pending:
        click.echo("Not applied yet (shoal has no API for them so far): " + "; ".join(pending), err=True)
    objects = [c for c in plan.changes if c.kind != "service" and c.action == CREATE]
    if objects:
        click.echo("Not created yet: " + ", ".join(f"{c.kind} {c.name}" for c in objects), err=True)
    ids = apply_plan(stack, plan, running, resolve_image)
    for name in plan.kept:
        click.echo(f"Service {name} is not in the stack file; kept (use --prune to remove it)", err=True)
    if not detach:
        for sid in ids:
            progress.wait(sid, quiet=quiet)


def deploy_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The flags of ``stack deploy``, docker's names."""
    for opt in reversed([
        click.option("-c", "--compose-file", "files", multiple=True, metavar="strings", help="Path to a Compose file (repeat to merge files, later ones win)"),
        click.option("--prune", is_flag=True, help="Prune services that are no longer referenced"),
        click.option("--dry-run", is_flag=True, help="Print what would be created, updated and removed; change nothing"),
        click.option("--resolve-image", type=click.Choice(["always", "changed", "never"]), default="always", show_default=True, help="Check images against the cluster's image store"),
        click.option("-d", "--detach", type=click.BOOL, default=True, show_default=True, is_flag=False, flag_value=True, help="Exit immediately instead of waiting for the stack services to converge"),
        click.option("-q", "--quiet", is_flag=True, help="Suppress progress output"),
    ]):  # fmt: skip
        fn = opt(fn)
    return fn
