"""``shoal stack deploy``: create, update and (with ``--prune``) remove the services of a stack.

The stack is loaded, checked and converted before the manager is contacted; ``--dry-run`` prints
the plan (``shoal.stack.plan``) and changes nothing. Updates are sent with the version read, so a
concurrent change is refused rather than overwritten; the leader's update supervisor then rolls the
changed service's tasks by its update_config (and the wait follows that rolling update), while a
service whose spec is unchanged is not sent at all. Networks, secrets and configs are
created (``NAME_x``, labelled with the stack; see stack_files) before the services that use them;
what shoal does not apply (a log driver other than json-file, json-file options other than max-size and
max-file) is named instead of dropped silently.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn

import click

from shoal import logopts
from shoal.cli import client, progress, stack_files
from shoal.cli.stack import cluster_networks, stack_services
from shoal.proto import control_pb2, types_pb2
from shoal.spec import with_defaults
from shoal.stack.convert import convert_stack
from shoal.stack.errors import StackError
from shoal.stack.loader import Stack, load_stack, read_text
from shoal.stack.objects import StackPlan
from shoal.stack.plan import (
    CREATE,
    REMOVE,
    UPDATE,
    Change,
    DeployPlan,
    dependency_levels,
    format_plan,
    plan_deploy,
    spec_dict,
)

PARALLEL_CALLS = 8
"""Control-API calls in flight at once during a deploy (each create waits for the manager's cache)."""


def load_or_exit(files: Sequence[str]) -> Stack:
    """The loaded stack; on problems print them all to stderr and exit 1. Warnings go to stderr."""
    if not files:
        raise click.UsageError("please specify at least one compose file (-c/--compose-file)")
    stdin: list[str] = []

    def read(path: Path) -> str:
        if str(path) == "-":
            stdin.append(stdin[0] if stdin else sys.stdin.read())
            return stdin[-1]
        return read_text(path)

    try:
        stack = load_stack(files, read=read)
    except StackError as exc:
        _problems_exit(exc, f"the stack has {len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''}")
    for warning in stack.warnings:
        click.echo(warning, err=True)
    return stack


def _problems_exit(exc: StackError, what: str) -> NoReturn:
    for problem in exc.problems:
        click.echo(str(problem), err=True)
    raise click.ClickException(f"{what}; nothing was deployed") from None


def load_and_convert(files: Sequence[str], namespace: str) -> StackPlan:
    """The stack's plan, checked by the manager's own rules; every problem printed and exit 1 if any."""
    stack = load_or_exit(files)
    try:
        return convert_stack(stack.compose, namespace, stack.marks)
    except StackError as exc:
        _problems_exit(exc, "the stack cannot be deployed as it is")


def make_plan(
    stack: StackPlan, running: list[types_pb2.Service], prune: bool, networks: dict[str, str] | None,
    files: dict[str, dict[str, str]] | None = None,
) -> DeployPlan:
    """The deploy plan of ``stack`` against the services of the stack that exist now.

    ``networks`` (name -> id, None when the cluster has no network API) turns the network ids the
    control API stores in a running spec back into the names the file uses, so they compare equal.
    """
    desired = {name: spec_dict(with_defaults(sp.spec)) for name, sp in stack.services.items()}
    names = {nid: name for name, nid in (networks or {}).items()}
    current = {}
    for svc in running:
        spec = types_pb2.ServiceSpec()
        spec.CopyFrom(svc.spec)
        for att in spec.networks:
            att.target = names.get(att.target, att.target)
        for sref in spec.container.secrets:  # the file names them; the control API adds their ids
            sref.secret_id = ""
        for cref in spec.container.configs:
            cref.config_id = ""
        current[svc.spec.name] = spec_dict(spec)
    known = {kind: set(names) for kind, names in files.items()} if files is not None else None
    return plan_deploy(stack, desired, current, prune, set(networks) if networks is not None else None, known)


def create_networks(stack: StackPlan, networks: dict[str, str] | None) -> None:
    """Create the stack's networks the cluster lacks; an external one that is missing stops the deploy."""
    wanted = stack.of_kind("network")
    if networks is None:
        if wanted:
            click.echo("Not created yet (the cluster has no network API so far): " + ", ".join(o.name for o in wanted), err=True)
        return
    missing = [o.name for o in wanted if o.external and o.name not in networks]
    if missing:
        raise click.ClickException(
            f"network {missing[0]} is declared as external, but could not be found: create it first (nothing was deployed)"
        )
    stub = client.stub()
    for obj in wanted:
        if obj.external or obj.name in networks:
            continue
        click.echo(f"Creating network {obj.name}")
        spec = types_pb2.NetworkSpec(name=obj.name, driver=obj.driver, subnet=obj.subnets[0] if obj.subnets else "", attachable=obj.attachable)
        spec.labels.update(dict(obj.labels))
        networks[obj.name] = stub.CreateNetwork(control_pb2.CreateNetworkRequest(spec=spec)).network.id


def not_applied(stack: StackPlan) -> list[str]:
    """What the stack asks for that this version of shoal cannot apply yet, one line each."""
    lines = []
    for name, sp in sorted(stack.services.items()):
        missing = logopts.unapplied(sp.extras.log_driver, dict(sp.extras.log_options))
        if missing:
            lines.append(f"{name}: {', '.join(missing)}")
    return lines


def _send(stub: Any, stack: StackPlan, change: Change, by_name: dict[str, types_pb2.Service], resolve_image: bool) -> str:
    """One control-API call for one service change; the service id (empty for a removal)."""
    if change.action == CREATE:
        req = control_pb2.CreateServiceRequest(spec=stack.services[change.name].spec, no_resolve_image=not resolve_image)
        return str(stub.CreateService(req).service.id)
    svc = by_name[change.name]
    if change.action == UPDATE:
        spec = stack.services[change.name].spec
        req = control_pb2.UpdateServiceRequest(service_id=svc.id, version=svc.meta.version, spec=spec, no_resolve_image=not resolve_image)
        return str(stub.UpdateService(req).service.id)
    stub.RemoveService(control_pb2.RemoveServiceRequest(service_id=svc.id))
    return ""


def apply_plan(stack: StackPlan, plan: DeployPlan, running: list[types_pb2.Service], resolve_image: bool) -> list[str]:
    """Carry out the service changes of ``plan``; returns the ids to wait for.

    Changes go in waves of ``depends_on`` level (a dependency is created before its dependents),
    the calls of one wave side by side; removals come last. A failed call stops before the next wave.
    """
    by_name = {s.spec.name: s for s in running}
    todo = {c.name: c for c in plan.changes if c.kind == "service" and c.action in (CREATE, UPDATE)}
    deps = {name: set(stack.services[name].depends_on) for name in todo}
    waves = [[todo[n] for n in wave] for wave in dependency_levels(deps)]
    waves.append([c for c in plan.changes if c.kind == "service" and c.action == REMOVE])
    ids: list[str] = []
    stub = client.stub()  # here: the click context it comes from is not visible in the pool's threads
    with ThreadPoolExecutor(max_workers=PARALLEL_CALLS) as pool:
        for wave in waves:
            for c in wave:
                verb = {CREATE: "Creating", UPDATE: "Updating", REMOVE: "Removing"}[c.action]
                click.echo(f"{verb} service {c.name}" + (f" (id: {by_name[c.name].id})" if c.action == UPDATE else ""))
            futures = [pool.submit(_send, stub, stack, c, by_name, resolve_image) for c in wave]
            ids.extend(sid for sid in (f.result() for f in futures) if sid)
    return ids


def deploy(stack: StackPlan, prune: bool, dry_run: bool, resolve_image: bool, detach: bool, quiet: bool = False) -> None:
    """``stack deploy`` once the stack is loaded: plan, print or apply, then wait unless detached."""
    running = stack_services(stack.namespace)
    networks = cluster_networks()
    files = stack_files.existing()
    plan = make_plan(stack, running, prune, networks, files)
    if dry_run:
        click.echo(format_plan(plan))
        return
    pending = not_applied(stack)
    if pending:
        click.echo("Not applied (every node writes json-file logs): " + "; ".join(pending), err=True)
    new_files = stack_files.prepare(stack, files)  # every check before anything is created
    create_networks(stack, networks)
    stack_files.create(new_files)
    ids = apply_plan(stack, plan, running, resolve_image)
    for name in plan.kept:
        click.echo(f"Service {name} is not in the stack file; kept (use --prune to remove it)", err=True)
    if not detach:
        for sid in ids:
            progress.wait(sid, quiet=quiet)
