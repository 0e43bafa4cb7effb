"""docker's container flags of ``svc create`` and ``svc update``: mounts, read-only root, capabilities, ...

``--mount``, ``--read-only``, ``--env-file``, ``--cap-add/--cap-drop``, ``--stop-signal``,
``--ulimit``, ``--sysctl``, ``--group``, ``--dns``, ``--dns-search``, ``--dns-option``, and their
``svc update`` forms (``--mount-add/-rm``, ``--ulimit-add/-rm``, ``--sysctl-add/-rm``,
``--group-add/-rm``, ``--dns-add/-rm``, ``--dns-search-add/-rm``, ``--dns-option-add/-rm``,
``--cap-add/-drop``, ``--user``, ``--workdir``, ``--entrypoint``, ``--hostname``, ``--stop-signal``,
``--read-only/--no-read-only``, ``--init/--no-init``), and ``--log-driver``/``--log-opt`` on both (as docker's
update: a new driver takes the ``--log-opt`` given with it, none kept; ``--log-opt`` alone replaces the options
of the current driver). Every value is parsed with the core's rules (shoal.mountspec,
shoal.ctropts, shoal.capnames) before the manager is contacted, so a bad one fails in one line
(FlagError) and nothing is sent; the manager checks the whole spec again with the same rules.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Iterable
from typing import Any

import click

from shoal import capnames, ctropts, logopts, mountspec, spec_container
from shoal.cli.service_opts import FlagError
from shoal.proto import types_pb2

ContainerSpec = types_pb2.ContainerSpec

CREATE_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--mount", multiple=True, metavar="mount", help="Attach a filesystem mount to the service (type=volume|bind|tmpfs,source=..,target=..[,readonly][,volume-nocopy][,tmpfs-size=..][,tmpfs-mode=..])"),
    click.option("--read-only", is_flag=True, help="Mount the container's root filesystem as read only"),
    click.option("--env-file", multiple=True, metavar="list", help="Read in a file of environment variables"),
    click.option("--cap-add", multiple=True, metavar="list", help="Add Linux capabilities"),
    click.option("--cap-drop", multiple=True, metavar="list", help="Drop Linux capabilities"),
    click.option("--stop-signal", metavar="string", help="Signal to stop the container"),
    click.option("--ulimit", multiple=True, metavar="ulimit", help="Ulimit options (NAME=SOFT[:HARD])"),
    click.option("--sysctl", multiple=True, metavar="list", help="Sysctl options (namespaced ones: net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*)"),
    click.option("--group", multiple=True, metavar="list", help="Set one or more supplementary user groups for the container"),
    click.option("--dns", multiple=True, metavar="list", help="Set custom DNS servers"),
    click.option("--dns-search", multiple=True, metavar="list", help="Set custom DNS search domains"),
    click.option("--dns-option", multiple=True, metavar="list", help="Set DNS options"),
]
LOG_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--log-driver", metavar="string", help="Logging driver for service (json-file: every node writes json-file logs)"),
    click.option("--log-opt", multiple=True, metavar="list", help="Logging driver options (json-file: max-size=10m, max-file=3)"),
]
CREATE_OPTIONS += LOG_OPTIONS


def _on_off(name: str, text: str) -> Callable[[Any], Any]:
    """``--NAME`` / ``--no-NAME``; None when neither is given (the spec keeps its value)."""
    return click.option(f"--{name}/--no-{name}", default=None, help=text)


UPDATE_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--mount-add", multiple=True, metavar="mount", help="Add or update a mount on a service"),
    click.option("--mount-rm", multiple=True, metavar="list", help="Remove a mount by its target path"),
    _on_off("read-only", "Mount the container's root filesystem as read only (--no-read-only: writable)"),
    _on_off("init", "Use an init inside each service container to forward signals and reap processes"),
    click.option("--cap-add", multiple=True, metavar="list", help="Add Linux capabilities"),
    click.option("--cap-drop", multiple=True, metavar="list", help="Drop Linux capabilities"),
    click.option("--stop-signal", metavar="string", help="Signal to stop the container"),
    click.option("-u", "--user", metavar="string", help="Username or UID (format: <name|uid>[:<group|gid>])"),
    click.option("-w", "--workdir", metavar="string", help="Working directory inside the container"),
    click.option("--entrypoint", metavar="command", help="Overwrite the default ENTRYPOINT of the image"),
    click.option("--hostname", metavar="string", help="Container hostname"),
    click.option("--ulimit-add", multiple=True, metavar="ulimit", help="Add or update a ulimit option"),
    click.option("--ulimit-rm", multiple=True, metavar="list", help="Remove a ulimit option"),
    click.option("--sysctl-add", multiple=True, metavar="list", help="Add or update a Sysctl option"),
    click.option("--sysctl-rm", multiple=True, metavar="list", help="Remove a Sysctl option"),
    click.option("--group-add", multiple=True, metavar="list", help="Add an additional supplementary user group to the container"),
    click.option("--group-rm", multiple=True, metavar="list", help="Remove a previously added supplementary user group from the container"),
    click.option("--dns-add", multiple=True, metavar="list", help="Add or update a custom DNS server"),
    click.option("--dns-rm", multiple=True, metavar="list", help="Remove a custom DNS server"),
    click.option("--dns-search-add", multiple=True, metavar="list", help="Add or update a custom DNS search domain"),
    click.option("--dns-search-rm", multiple=True, metavar="list", help="Remove a DNS search domain"),
    click.option("--dns-option-add", multiple=True, metavar="list", help="Add or update a DNS option"),
    click.option("--dns-option-rm", multiple=True, metavar="list", help="Remove a DNS option"),
    *LOG_OPTIONS,
]


def _check(flag: str, value: str, fn: Callable[[str], Any]) -> Any:
    try:
        return fn(value)
    except ValueError as exc:
        raise FlagError(flag, value, str(exc)) from None


def parse_mount(flag: str, value: str) -> types_pb2.Mount:
    return spec_container.mount_from_dict(_check(flag, value, mountspec.parse))


def read_env_file(path: str, environ: dict[str, str] | None = None) -> list[str]:
    """docker's env-file: ``KEY=VALUE`` lines (taken as written), ``KEY`` alone copies this shell's value,
    blank lines and ``#`` comments are skipped."""
    environ = dict(os.environ) if environ is None else environ
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise FlagError("--env-file", path, getattr(exc, "strerror", None) or str(exc)) from None
    out = []
    for number, line in enumerate(lines, 1):
        text = line.lstrip()
        if not text or text.startswith("#"):
            continue
        key, sep, _ = text.partition("=")
        if not key.strip() or any(c.isspace() for c in key):
            raise FlagError("--env-file", path, f"line {number}: variable {key!r} contains whitespaces or is empty")
        if sep:
            out.append(text)
        elif key in environ:
            out.append(f"{key}={environ[key]}")
    return out


def _ulimit(flag: str, value: str) -> types_pb2.Ulimit:
    name, soft, hard = _check(flag, value, ctropts.parse_ulimit)
    return types_pb2.Ulimit(name=name, soft=soft, hard=hard)


def _caps(flag: str, values: Iterable[str]) -> list[str]:
    return [n for v in values for n in v.split(",") if _check(flag, n, capnames.normalize)]


def apply_create(c: ContainerSpec, o: dict[str, Any]) -> None:
    """Fill ``c`` from the ``svc create`` flags in ``o`` (click's keyword arguments); FlagError on a bad value."""
    c.mounts.extend(parse_mount("--mount", v) for v in o.get("mount") or ())
    c.read_only = bool(o.get("read_only"))
    from_files = [e for path in o.get("env_file") or () for e in read_env_file(path)]
    if from_files:
        c.env[:] = from_files + list(c.env)  # --env wins over --env-file, as in docker
    c.cap_add.extend(_caps("--cap-add", o.get("cap_add") or ()))
    c.cap_drop.extend(_caps("--cap-drop", o.get("cap_drop") or ()))
    if o.get("stop_signal"):
        _check("--stop-signal", o["stop_signal"], ctropts.signal_number)
        c.stop_signal = o["stop_signal"]
    c.ulimits.extend(_merge_ulimits([], [_ulimit("--ulimit", v) for v in o.get("ulimit") or ()]))
    for value in o.get("sysctl") or ():
        key, val = _check("--sysctl", value, ctropts.parse_sysctl)
        c.sysctls[key] = val
    c.groups.extend(_unique(o.get("group") or ()))
    _dns_add(c.dns_config, o.get("dns") or (), o.get("dns_search") or (), o.get("dns_option") or ())
    set_logging(c, o)


def set_logging(c: ContainerSpec, o: dict[str, Any]) -> None:
    """``--log-driver`` / ``--log-opt KEY=VALUE`` (checked with the manager's rules); untouched when neither is given."""
    driver, opts = o.get("log_driver"), o.get("log_opt") or ()
    if driver is None and not opts:
        return
    options = {}
    for value in opts:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise FlagError("--log-opt", value, "expected KEY=VALUE")
        options[key] = val
    if driver is not None:
        c.log_driver = driver
    try:
        logopts.rotation(c.log_driver, options)
    except logopts.LogOptError as exc:
        culprit = next((v for v in opts if v.partition("=")[0] in str(exc)), None)
        raise FlagError("--log-opt" if culprit else "--log-driver", culprit or c.log_driver, str(exc)) from None
    c.log_options.clear()
    c.log_options.update(options)
    unapplied = logopts.unapplied(c.log_driver, options)
    if unapplied:
        click.echo("Not applied (every node writes json-file logs): " + ", ".join(unapplied), err=True)


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in values if v.strip()))


def _merge_ulimits(kept: list[types_pb2.Ulimit], added: list[types_pb2.Ulimit]) -> list[types_pb2.Ulimit]:
    by_name = {u.name: u for u in kept}
    by_name.update({u.name: u for u in added})
    return [by_name[n] for n in sorted(by_name)]


def _dns_add(dns: types_pb2.DNSConfig, servers: Iterable[str], search: Iterable[str], options: Iterable[str]) -> None:
    for flag, values, check, field in (
        ("--dns", servers, ctropts.check_nameserver, dns.nameservers),
        ("--dns-search", search, ctropts.check_dns_search, dns.search),
        ("--dns-option", options, ctropts.check_dns_option, dns.options),
    ):
        for value in values:
            _check(flag, value, check)
            if value not in field:
                field.append(value)


def apply_update(c: ContainerSpec, o: dict[str, Any]) -> None:
    """Change ``c`` with the ``svc update`` flags in ``o``: removals first, then additions (docker's order)."""
    _update_mounts(c, o.get("mount_rm") or (), o.get("mount_add") or ())
    for name in ("read_only", "init"):
        if o.get(name) is not None:
            setattr(c, name, bool(o[name]))
    _update_caps(c, _caps("--cap-add", o.get("cap_add") or ()), _caps("--cap-drop", o.get("cap_drop") or ()))
    if o.get("stop_signal") is not None:
        if o["stop_signal"]:
            _check("--stop-signal", o["stop_signal"], ctropts.signal_number)
        c.stop_signal = o["stop_signal"]
    for key, attr in (("user", "user"), ("workdir", "dir"), ("hostname", "hostname")):
        if o.get(key) is not None:
            setattr(c, attr, o[key])
    if o.get("entrypoint") is not None:
        try:
            c.command[:] = shlex.split(o["entrypoint"])
        except ValueError as exc:
            raise FlagError("--entrypoint", o["entrypoint"], str(exc)) from None
    gone = set(o.get("ulimit_rm") or ())
    kept = [u for u in c.ulimits if u.name not in gone]
    merged = _merge_ulimits(kept, [_ulimit("--ulimit-add", v) for v in o.get("ulimit_add") or ()])
    del c.ulimits[:]
    c.ulimits.extend(merged)
    for key in o.get("sysctl_rm") or ():
        c.sysctls.pop(key.partition("=")[0], None)
    for value in o.get("sysctl_add") or ():
        key, val = _check("--sysctl-add", value, ctropts.parse_sysctl)
        c.sysctls[key] = val
    groups = [g for g in c.groups if g not in set(o.get("group_rm") or ())]
    c.groups[:] = _unique([*groups, *(o.get("group_add") or ())])
    _update_dns(c.dns_config, o)
    set_logging(c, o)


def _update_mounts(c: ContainerSpec, remove: Iterable[str], add: Iterable[str]) -> None:
    """``--mount-rm TARGET`` removes the mount at TARGET; an added mount replaces one with its target."""
    gone = {_check("--mount-rm", t, lambda v: mountspec.clean_path("mount target", v)) for t in remove}
    kept = [m for m in c.mounts if m.target not in gone]
    for value in add:
        new = parse_mount("--mount-add", value)
        kept = [m for m in kept if m.target != new.target] + [new]
    del c.mounts[:]
    c.mounts.extend(kept)


def _update_caps(c: ContainerSpec, add: list[str], drop: list[str]) -> None:
    """docker's rule: an added capability leaves the drop list and a dropped one the add list."""
    norm = capnames.normalize
    added, dropped = {norm(n) for n in add}, {norm(n) for n in drop}
    cap_add = [n for n in c.cap_add if norm(n) not in dropped] + [n for n in add if norm(n) not in {norm(k) for k in c.cap_add}]
    cap_drop = [n for n in c.cap_drop if norm(n) not in added] + [n for n in drop if norm(n) not in {norm(k) for k in c.cap_drop}]
    c.cap_add[:] = list(dict.fromkeys(cap_add))
    c.cap_drop[:] = list(dict.fromkeys(cap_drop))


def _update_dns(dns: types_pb2.DNSConfig, o: dict[str, Any]) -> None:
    if not any(o.get(f"{name}_{op}") for name in ("dns", "dns_search", "dns_option") for op in ("add", "rm")):
        return  # untouched: an empty DNSConfig set here would make the spec differ from the one read
    for name, field in (("dns", dns.nameservers), ("dns_search", dns.search), ("dns_option", dns.options)):
        gone = set(o.get(f"{name}_rm") or ())
        field[:] = [v for v in field if v not in gone]
    _dns_add(dns, o.get("dns_add") or (), o.get("dns_search_add") or (), o.get("dns_option_add") or ())
