"""Validation of a service's container settings: mounts, capabilities, ulimits, sysctls, DNS, templates.

Called by ``shoal.spec.validate`` (every spec passes it before it reaches etcd) for the ContainerSpec
fields that docker's ``create`` flags fill: the rules themselves live in shoal.mountspec,
shoal.ctropts, shoal.capnames and shoal.templates, shared with ``shoal run`` and the stack loader.
Also the two conversions between a protobuf Mount and the plain mount dict those rules work on.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from shoal import capnames, ctropts, logopts, mountspec, templates
from shoal.proto import types_pb2 as pb

HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$")
GROUP_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$")
MOUNT_TYPES = {pb.Mount.VOLUME: "volume", pb.Mount.BIND: "bind", pb.Mount.TMPFS: "tmpfs"}
MOUNT_TYPE_NUMBERS = {name: number for number, name in MOUNT_TYPES.items()}


class FieldError(ValueError):
    """An invalid container field: ``field`` as a user wrote it, ``message`` what is wrong with it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def mount_to_dict(m: pb.Mount) -> dict[str, Any]:
    """The plain form shoal.mountspec and the runtime use; an unknown type stays a number (refused later)."""
    return {
        "type": MOUNT_TYPES.get(m.type, m.type), "source": m.source, "target": m.target, "readonly": m.readonly,
        "volume_nocopy": m.volume_nocopy, "tmpfs_size": m.tmpfs_size_bytes, "tmpfs_mode": m.tmpfs_mode,
        "volume_subpath": m.volume_subpath, "bind_propagation": m.bind_propagation,
    }


def mount_from_dict(m: dict[str, Any]) -> pb.Mount:
    """A normalized mount dict (shoal.mountspec) as a protobuf Mount."""
    return pb.Mount(
        type=MOUNT_TYPE_NUMBERS[m["type"]], source=m["source"], target=m["target"], readonly=m["readonly"],
        volume_nocopy=m["volume_nocopy"], tmpfs_size_bytes=m["tmpfs_size"], tmpfs_mode=m["tmpfs_mode"],
        volume_subpath=m["volume_subpath"], bind_propagation=m["bind_propagation"],
    )


def mount_text(m: pb.Mount) -> str:
    """docker's ``--mount`` text of ``m`` (how inspect and errors show it)."""
    d = mount_to_dict(m)
    parts = [f"type={d['type']}"] + ([f"source={m.source}"] if m.source else []) + [f"target={m.target}"]
    parts += ["readonly"] if m.readonly else []
    parts += ["volume-nocopy"] if m.volume_nocopy else []
    parts += [f"volume-subpath={m.volume_subpath}"] if m.volume_subpath else []
    parts += [f"bind-propagation={m.bind_propagation}"] if m.bind_propagation else []
    parts += [f"tmpfs-size={m.tmpfs_size_bytes}"] if m.tmpfs_size_bytes else []
    parts += [f"tmpfs-mode={m.tmpfs_mode:o}"] if m.tmpfs_mode else []
    return ",".join(parts)


def check(c: pb.ContainerSpec, labels: Mapping[str, str] | None = None) -> None:
    """Raise FieldError naming the first invalid field among the ones this module owns.

    Templates are checked as they would expand, with sample task facts and the service's ``labels``
    (so ``{{index .Service.Labels "v"}}`` is judged by the label's value)."""
    ctx = dataclasses.replace(templates.SAMPLE, service_labels=dict(labels or {}))
    _check_text(c, ctx)
    try:
        mountspec.normalize_all([_expanded(mount_to_dict(m), ctx) for m in c.mounts])
    except (mountspec.MountError, templates.TemplateError) as exc:
        raise FieldError("mounts", str(exc)) from None
    _guard("cap_add", lambda: [capnames.normalize(n) for n in c.cap_add])
    _guard("cap_drop", lambda: [capnames.normalize(n) for n in c.cap_drop])
    if c.stop_signal:
        _guard("stop_signal", lambda: ctropts.signal_number(c.stop_signal))
    _guard("ulimits", lambda: ctropts.check_ulimits([(u.name, u.soft, u.hard) for u in c.ulimits]))
    for key, value in sorted(c.sysctls.items()):
        _guard("sysctls", lambda k=key, v=value: ctropts.check_sysctl(k, v))
    for group in c.groups:
        if not GROUP_RE.fullmatch(group):
            raise FieldError("groups", f"invalid group {group!r}: a group name or a numeric gid")
    dns = c.dns_config
    for server in dns.nameservers:
        _guard("dns", lambda s=server: ctropts.check_nameserver(s))
    for domain in dns.search:
        _guard("dns_search", lambda d=domain: ctropts.check_dns_search(d))
    for option in dns.options:
        _guard("dns_option", lambda o=option: ctropts.check_dns_option(o))
    _guard("log_options", lambda: logopts.rotation(c.log_driver, c.log_options))


def _expanded(m: dict[str, Any], ctx: templates.Context) -> dict[str, Any]:
    return {**m, "source": templates.expand(m["source"], ctx), "target": templates.expand(m["target"], ctx),
            "volume_subpath": templates.expand(m["volume_subpath"], ctx)}


def _check_text(c: pb.ContainerSpec, ctx: templates.Context) -> None:
    """The hostname, env and workdir, with their templates as they would expand."""
    if c.hostname:
        try:
            shown = templates.expand(c.hostname, ctx)
        except templates.TemplateError as exc:
            raise FieldError("hostname", str(exc)) from None
        if not HOSTNAME_RE.fullmatch(shown):
            raise FieldError("hostname", f"{c.hostname!r} is not a valid hostname (letters, digits, '-', '.'; at most 63)")
    for entry in c.env:
        _guard("env", lambda e=entry: templates.expand(e, ctx))
    if c.dir and not c.dir.startswith("/"):
        raise FieldError("workdir", f"the working directory {c.dir!r} is invalid: it needs to be an absolute path")


def _guard(field: str, fn: Any) -> None:
    try:
        fn()
    except ValueError as exc:
        raise FieldError(field, str(exc)) from None
