"""Keys a stack file may set inside a service or a top-level object that shoal accepts but does not apply.

Compose allows more than Swarm uses: a port's host address, a network's ``internal`` flag, a bind
mount's ``create_host_path``, a volume driver's options... The models accept them, so a file written
for ``docker compose`` loads, and this module names the ones a loaded stack sets (a value other than
the field's default), so the loader's "Ignoring unsupported options" warning lists them with the
service keys it already names: never a silent drop. Pure functions over the typed models.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel

from shoal.stack.model_deploy import Reservations
from shoal.stack.model_file import ComposeFile, Ipam, IpamConfig, Network, Secret, Volume
from shoal.stack.model_service import BindOptions, DependsOn, EnvFile, Mount, Port, ServiceNetwork

IGNORED: Mapping[type[BaseModel], frozenset[str]] = {
    Port: frozenset({"host_ip", "app_protocol"}),
    ServiceNetwork: frozenset({"ipv4_address", "ipv6_address", "link_local_ips", "mac_address", "driver_opts", "priority",
                               "gw_priority", "interface_name"}),  # fmt: skip
    Mount: frozenset({"consistency"}),
    BindOptions: frozenset({"create_host_path", "selinux"}),
    EnvFile: frozenset({"format"}),
    DependsOn: frozenset({"restart", "required"}),
    Reservations: frozenset({"generic_resources", "devices"}),
    Network: frozenset({"driver_opts", "internal", "enable_ipv4", "enable_ipv6"}),
    Ipam: frozenset({"driver", "options"}),
    IpamConfig: frozenset({"ip_range", "gateway", "aux_addresses"}),
    Volume: frozenset({"driver_opts", "labels"}),
    Secret: frozenset({"driver", "driver_opts", "template_driver"}),
}
"""Per model, the fields shoal does not apply (every other field of the stack models is applied)."""
APPLIED_VOLUME_DRIVERS = (None, "local")


def _ignored_fields(model: BaseModel) -> frozenset[str]:
    for cls in type(model).__mro__:
        if cls in IGNORED:
            return IGNORED[cls]
    return frozenset()


def _walk(value: Any, path: tuple[str, ...]) -> Iterator[str]:
    """Dotted paths (list indexes and map keys left out) of ignored fields set below ``value``."""
    if isinstance(value, BaseModel):
        skip = _ignored_fields(value)
        for name, field in type(value).model_fields.items():
            got = getattr(value, name)
            if name in skip and got != field.default:
                yield ".".join((*path, name))
            elif name not in skip:
                yield from _walk(got, (*path, name))
        if isinstance(value, Volume) and value.driver not in APPLIED_VOLUME_DRIVERS:
            yield ".".join((*path, "driver"))
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _walk(item, path)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _walk(item, path)


def ignored_options(compose: ComposeFile) -> dict[str, set[str]]:
    """What ``compose`` sets that shoal does not apply: ``ports.host_ip`` -> the services setting it, and
    ``networks.back.internal`` (a top-level object's key, named in full) -> no names."""
    found: dict[str, set[str]] = {}
    for name, svc in compose.services.items():
        for key in _walk(svc, ()):
            found.setdefault(key, set()).add(name)
    for kind in ("networks", "volumes", "secrets", "configs"):
        for key, obj in getattr(compose, kind).items():
            for sub in _walk(obj, ()):
                found.setdefault(f"{kind}.{key}.{sub}", set())
    return found
