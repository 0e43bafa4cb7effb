"""How secrets and configs are printed: docker's ls table, inspect JSON, ``--pretty`` and ``--format``.

Pure functions of the control API's messages. Inspect uses docker's field names (``ID``,
``Version.Index``, ``CreatedAt`` in RFC 3339, ``Spec.Name``/``Labels``; a config's ``Spec.Data`` in
base64 as docker's JSON has it); a secret carries no data to show. ``ls`` rows carry docker's
list fields (``ID``, ``Name``, ``CreatedAt``, ``UpdatedAt``, ``Labels``; ``Driver`` for a secret), which
``--format`` templates and ``--format json`` see as docker's do.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from shoal.cli.listing import label_matches
from shoal.cli.output import ago

HEADERS = {"secret": ("ID", "NAME", "DRIVER", "CREATED", "UPDATED"), "config": ("ID", "NAME", "CREATED", "UPDATED")}
"""docker's ``secret ls`` and ``config ls`` columns (a secret's driver is empty: shoal keeps it itself)."""


def row(r: dict[str, str]) -> list[str]:
    """One ``ls`` table row of a ``record`` (the DRIVER cell only for a secret)."""
    return [r["ID"], r["Name"], *([r["Driver"]] if "Driver" in r else []), r["CreatedAt"], r["UpdatedAt"]]


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


def record(kind: str, o: Any) -> dict[str, str]:
    """One ``ls`` row under docker's field names (what ``--format`` and ``--format json`` see)."""
    rec = {"ID": o.id, "Name": o.spec.name}
    if kind == "secret":
        rec["Driver"] = ""  # docker's column: shoal keeps every secret itself (no external driver)
    labels = ",".join(f"{k}={v}" for k, v in sorted(o.spec.labels.items()))
    return {**rec, "CreatedAt": _ago_cap(o.meta.created_at_ns), "UpdatedAt": _ago_cap(o.meta.updated_at_ns), "Labels": labels}


def _ago_cap(ns: int) -> str:
    text = ago(ns)
    return text[:1].upper() + text[1:]


def matches(o: Any, filters: dict[str, list[str]]) -> bool:
    """docker's secret/config ls filters: id and name by prefix, label by key or key=value."""
    if "id" in filters and not any(o.id.startswith(v) for v in filters["id"]):
        return False
    if "name" in filters and not any(o.spec.name.startswith(v) for v in filters["name"]):
        return False
    return all(label_matches(o.spec.labels, w) for w in filters.get("label", []))


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
