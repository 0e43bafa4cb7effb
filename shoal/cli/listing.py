"""What list commands print, as plain text: docker-shaped tables, JSON lines, ages and state words.

Tables are laid out the way docker's ``tabwriter`` does it (cells padded by 3 spaces, at least 10
wide, last column unpadded), as plain text so that piping ``shoal svc ls`` through ``grep`` or
``awk`` works like piping ``docker service ls``. ``--format json`` prints a list command as docker
does, one compact JSON object per line (the row's fields, keys sorted); ``-q`` prints only ids.

Pure functions without click: the click commands print through output.py, which re-exports these,
and the fast ``svc ls`` (fastsvc.py) prints the very same text without loading click.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing and the generated classes cost the fast ``svc ls`` ~40 ms to import
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any

MIN_WIDTH = 10
PADDING = 3
MAX_ERR_LENGTH = 30  # docker's task error truncation


class FilterError(ValueError):
    """A ``--filter`` value a list command cannot use (the message says which and why)."""


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Lay out rows under headers as docker's tabwriter (minwidth 10, padding 3) does."""
    table = [list(headers)] + [[str(c) for c in row] for row in rows]
    ncols = len(headers)
    widths = [max(MIN_WIDTH, max(len(r[i]) for r in table) + PADDING) for i in range(ncols - 1)]
    lines = []
    for row in table:
        cells = [row[i].ljust(widths[i]) for i in range(ncols - 1)] + [row[-1]]
        lines.append("".join(cells).rstrip())
    return "\n".join(lines)


def list_text(
    fmt: str,
    quiet: bool,
    headers: Sequence[str],
    records: Sequence[dict[str, Any]],
    table_row: Callable[[dict[str, Any]], Sequence[str]],
    template_record: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> str:
    """A list command's output for ``-q`` (ids), ``--format json`` (one JSON line per record) or a table
    (any other ``fmt``: templates are output.py's), each line ending in a newline."""
    if quiet:
        return "".join(rec["ID"] + "\n" for rec in records)
    if fmt.strip().lower() == "json":
        view = template_record or (lambda r: r)
        return "".join(json_line(view(r)) + "\n" for r in records)
    return format_table(headers, [table_row(r) for r in records]) + "\n"


def json_line(record: Mapping[str, Any]) -> str:
    """One list row as docker's ``--format json`` prints it: compact, keys sorted (Go marshals a map so)."""
    import json  # only --format json needs it: a table (`svc ls`) does not load it

    return json.dumps(record, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def human_duration(seconds: float) -> str:
    """docker's go-units ``HumanDuration``: "Less than a second", "5 seconds", "About a minute"..."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)  # Go's math.Round, not banker's rounding
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds // 3600) // 24 // 365} years"


def ago(timestamp_ns: int, now: float | None = None) -> str:
    """"5 seconds ago", lower-cased as docker prints it after a state word."""
    now = time.time() if now is None else now
    if not timestamp_ns:
        return ""
    return human_duration(max(0.0, now - timestamp_ns / 1e9)).lower() + " ago"


def state_word(state: int) -> str:
    """TaskState.RUNNING -> "running" (docker's lower-case state names)."""
    from shoal.proto import types_pb2

    return types_pb2.TaskState.Name(state).lower()


def pretty_state(state: int) -> str:
    """TaskState.RUNNING -> "Running" (docker's ``PrettyPrint``)."""
    return state_word(state).capitalize()


# ServiceSpec.Mode by number, as docker names them (a unit test checks the table against proto/types.proto)
MODE_NAMES = ("replicated", "global", "replicated job", "global job")


def mode_name(mode: int) -> str:
    """ServiceSpec.Mode -> "replicated", "global", "replicated job", "global job"."""
    if not 0 <= mode < len(MODE_NAMES):  # as protobuf's Mode.Name refuses a number it does not know
        raise ValueError(f"unknown service mode {mode}")
    return MODE_NAMES[mode]


def quote_error(err: str, trunc: bool = True) -> str:
    """A task error as docker's ps shows it: quoted, cut to 30 characters with an ellipsis."""
    if trunc and len(err) > MAX_ERR_LENGTH:
        err = err[: MAX_ERR_LENGTH - 1] + "…"
    return f'"{err}"' if err else ""


SERVICE_FILTER_VALUES = {"mode": ("replicated", "global", "replicated-job", "global-job")}
TASK_FILTER_VALUES = {"desired-state": ("running", "shutdown", "accepted")}


def label_matches(labels: Mapping[str, str], wanted: str) -> bool:
    """docker's ``label`` filter value: ``KEY`` (the label is set) or ``KEY=VALUE`` (set to that value)."""
    key, sep, val = wanted.partition("=")
    return key in labels and (not sep or labels[key] == val)


def filters(
    values: Iterable[str], allowed: Sequence[str], choices: dict[str, Sequence[str]] | None = None
) -> dict[str, list[str]]:
    """``["name=web", "name=api"]`` -> ``{"name": ["web", "api"]}``; unknown keys (and, for keys in
    ``choices``, values outside them) are FilterErrors."""
    out: dict[str, list[str]] = {}
    for v in values:
        key, sep, val = v.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            raise FilterError(f"bad format of filter (expected name=value): {v}")
        if key not in allowed:
            raise FilterError(f"invalid filter '{key}' (allowed: {', '.join(allowed)})")
        wanted = (choices or {}).get(key)
        if wanted is not None and val.lower() not in wanted:
            raise FilterError(f"invalid value for filter '{key}': {val!r} (expected {', '.join(wanted)})")
        out.setdefault(key, []).append(val)
    return out
