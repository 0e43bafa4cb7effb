"""How secrets and configs are printed: docker's ls table, inspect JSON, ``--pretty`` and ``--format``.

Pure functions of the control API's messages. Inspect uses docker's field names (``ID``,
``Version.Index``, ``CreatedAt`` in RFC 3339, ``Spec.Name``/``Labels``; a config's ``Spec.Data`` in
base64 as docker's JSON has it); a secret carries no data to show. ``--format`` takes docker's
common template forms: ``{{.ID}}``, ``{{.Name}}``, ``{{.Spec.Name}}``, ``{{.CreatedAt}}``,
``{{.Labels}}``, ``{{json .}}``, with ``table`` and ``\\t``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from typing import Any

from shoal.cli.output import ago

HEADERS = ("ID", "NAME", "CREATED", "UPDATED")
_FIELD = re.compile(r"\{\{\s*(json\s+)?\.([A-Za-z.]*)\s*\}\}")


def rfc3339(ns: int) -> str:
    """Nanoseconds since the epoch as docker prints times: 2026-12-01T17:46:27.123456789Z."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = dt.datetime.fromtimestamp(secs, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}Z" if frac else f"{base}Z"


def obj_dict(kind: str, o: Any) -> dict[str, Any]:
    """The inspect JSON of a secret or config, with docker's field names."""
    spec: dict[str, Any] = {"Name": o.spec.name, "Labels": dict(o.spec.labels)}
    if kind == "config":
        spec["Data"] = base64.b64encode(o.spec.data).decode()
    return {
        "ID": o.id,
        "Version": {"Index": o.meta.version},
        "CreatedAt": rfc3339(o.meta.created_at_ns),
        "UpdatedAt": rfc3339(o.meta.updated_at_ns),
        "Spec": spec,
    }


def row(o: Any) -> list[str]:
    return [o.id, o.spec.name, _ago_cap(o.meta.created_at_ns), _ago_cap(o.meta.updated_at_ns)]


def _ago_cap(ns: int) -> str:
    text = ago(ns)
    return text[:1].upper() + text[1:]


def matches(o: Any, filters: dict[str, list[str]]) -> bool:
    """docker's secret/config ls filters: id and name by prefix, label by key or key=value."""
    if "id" in filters and not any(o.id.startswith(v) for v in filters["id"]):
        return False
    if "name" in filters and not any(o.spec.name.startswith(v) for v in filters["name"]):
        return False
    for want in filters.get("label", []):
        key, eq, value = want.partition("=")
        if key not in o.spec.labels or (eq and o.spec.labels[key] != value):
            return False
    return True


def pretty(kind: str, o: Any) -> str:
    """``inspect --pretty``: a secret's facts, a config's facts and its data."""
    lines = [
        f"ID:              {o.id}",
        f"Name:            {o.spec.name}",
    ]
    if o.spec.labels:
        lines.append("Labels:")
        lines += [f" - {k}={v}" for k, v in sorted(o.spec.labels.items())]
    lines += [f"Created at:      {rfc3339(o.meta.created_at_ns)}", f"Updated at:      {rfc3339(o.meta.updated_at_ns)}"]
    if kind == "config":
        lines += ["Data:", o.spec.data.decode("utf-8", "replace")]
    return "\n".join(lines)


def _lookup(value: dict[str, Any], path: str) -> Any:
    flat = {"Name": value["Spec"]["Name"], "Labels": value["Spec"]["Labels"], **value}
    cur: Any = flat
    for part in [p for p in path.split(".") if p]:
        if not isinstance(cur, dict) or part not in cur:
            raise KeyError(part)
        cur = cur[part]
    return cur


def _text(v: Any) -> str:
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{x}" for k, x in sorted(v.items())) + "]"
    return str(v)


def render_template(fmt: str, kind: str, o: Any) -> str:
    """One object through a docker-style template; an unknown field is a clear error."""
    import click

    value = obj_dict(kind, o)
    body = fmt.removeprefix("table ")

    def sub(m: re.Match[str]) -> str:
        try:
            v = _lookup(value, m.group(2))
        except KeyError as exc:
            raise click.ClickException(f"template: can't evaluate field {exc.args[0]} in {fmt!r}") from None
        return json.dumps(v) if m.group(1) else _text(v)

    return _FIELD.sub(sub, body).replace("\\t", "\t")
