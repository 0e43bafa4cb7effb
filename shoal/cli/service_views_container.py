"""How ``svc inspect --pretty`` shows a service's mounts, files, health check and container options, after docker's layout.

Kept apart from service_views.py (the rest of the pretty view) so each stays one concern; the lines
follow docker's ``Mounts:`` block (`` Target = ...`` then the mount's fields) and print only what
the spec sets, as docker does.
"""

from __future__ import annotations

from shoal import spec_container, units
from shoal.proto import types_pb2


def container_lines(c: types_pb2.ContainerSpec) -> list[str]:
    """The ContainerSpec lines for the docker-flag fields that are set (hostname, read-only, ...)."""
    out: list[str] = []
    pairs = [
        ("Hostname", c.hostname), ("Read Only", "true" if c.read_only else ""), ("Stop Signal", c.stop_signal),
        ("Groups", " ".join(c.groups)), ("Capability Add", " ".join(c.cap_add)), ("Capability Drop", " ".join(c.cap_drop)),
        ("Ulimits", " ".join(f"{u.name}={u.soft}:{u.hard}" for u in c.ulimits)),
        ("Sysctls", " ".join(f"{k}={v}" for k, v in sorted(c.sysctls.items()))),
        ("DNS", " ".join(c.dns_config.nameservers)), ("DNS Search", " ".join(c.dns_config.search)),
        ("DNS Options", " ".join(c.dns_config.options)),
    ]
    for key, value in pairs:
        if value:
            out.append(f"{' ' + key + ':':<18}{value}")
    return out


def mount_lines(c: types_pb2.ContainerSpec) -> list[str]:
    """docker's ``Mounts:`` block (empty when the service has no mount)."""
    if not c.mounts:
        return []
    out = ["Mounts:"]
    for m in c.mounts:
        d = spec_container.mount_to_dict(m)
        out.append(f" Target = {m.target}")
        if m.source:
            out.append(f"  Source = {m.source}")
        out.append(f"  ReadOnly = {str(m.readonly).lower()}")
        out.append(f"  Type = {d['type']}")
        if m.volume_nocopy:
            out.append("  VolumeNoCopy = true")
        if m.volume_subpath:
            out.append(f"  Subpath = {m.volume_subpath}")
        if m.bind_propagation:
            out.append(f"  Propagation = {m.bind_propagation}")
        if m.tmpfs_size_bytes:
            out.append(f"  SizeBytes = {m.tmpfs_size_bytes}")
        if m.tmpfs_mode:
            out.append(f"  Mode = {m.tmpfs_mode:o}")
    return out


def log_lines(c: types_pb2.ContainerSpec) -> list[str]:
    """docker's ``Log Driver:`` block (empty when the service sets neither a driver nor options)."""
    if not c.log_driver and not c.log_options:
        return []
    out = ["Log Driver:"]
    if c.log_driver:
        out.append(f" Name:\t\t{c.log_driver}")
    if c.log_options:
        out.append(" LogOpts:")
        out.extend(f"  {k}:\t\t{v}" for k, v in sorted(c.log_options.items()))
    return out


def file_lines(c: types_pb2.ContainerSpec) -> list[str]:
    """docker's ``Configs:`` and ``Secrets:`` blocks: each file's target in the container and what it holds."""
    out: list[str] = []
    for title, refs in (("Configs", [(r.file.name, r.config_name) for r in c.configs]),
                        ("Secrets", [(r.file.name, r.secret_name) for r in c.secrets])):  # fmt: skip
        if refs:
            out.append(f"{title}:")
            for target, source in refs:
                out += [f" Target:\t{target}", f"  Source:\t{source}"]
    return out


def health_lines(hc: types_pb2.HealthCheck) -> list[str]:
    """docker's `` Healthcheck:`` block (empty without a check; ``NONE`` is shown as docker shows it)."""
    if not hc.test:
        return []
    out = [" Healthcheck:"]
    for key, ns in (("Interval", hc.interval_ns), ("Retries", None), ("StartPeriod", hc.start_period_ns), ("Timeout", hc.timeout_ns)):
        out.append(f"  {key} = {hc.retries if ns is None else units.format_duration(ns)}")
    out.append("  Tests:")
    out.extend(f"\t Test = {t}" for t in hc.test)
    return out
