"""``stack config``: the merged, interpolated, resolved stack printed back as YAML.

Like ``docker stack config`` the output is the long form of everything (ports and volumes as
mappings, health tests as lists, durations in Go's notation, sizes in bytes, paths absolute),
services sorted by name, empty values left out. Feeding the output back to ``stack deploy`` gives
the same stack.
"""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML

from shoal.stack.model_file import ComposeFile

SECTIONS = ("version", "services", "networks", "volumes", "secrets", "configs")


def _prune(value: Any) -> Any:
    """Drop empty mappings and lists (and the keys holding them); escape ``$`` as ``$$``.

    The escape makes the output a stack file that loads back to the same stack (as ``docker
    compose config`` does): a literal ``$`` must not be read as a variable the second time.
    """
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            pv = _prune(v)
            if pv in ({}, []):
                continue
            out[k] = pv
        return out
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def config_data(stack: ComposeFile) -> dict[str, Any]:
    """The data ``stack config`` prints, in docker's order; declared objects stay even when empty."""
    data = stack.model_dump(mode="json", exclude_none=True)
    out: dict[str, Any] = {}
    if data.get("version"):  # not interpolated, so never escaped
        out["version"] = data["version"]
    services: dict[str, Any] = {}
    for name in sorted(data.get("services", {})):
        svc = data["services"][name]
        nets = svc.pop("networks", {})
        services[name] = _prune(svc)
        if nets:
            services[name]["networks"] = {n: (_prune(c) or None) if c else None for n, c in nets.items()}
    out["services"] = services
    for section in SECTIONS[2:]:
        objs = data.get(section) or {}
        if objs:
            out[section] = {n: _prune(o) or None for n, o in objs.items()}
    return out


def render_config(stack: ComposeFile) -> str:
    """YAML text of ``config_data(stack)``."""
    y = YAML(typ="rt")
    y.default_flow_style = False
    y.width = 4096
    buf = io.StringIO()
    y.dump(config_data(stack), buf)
    return buf.getvalue()
