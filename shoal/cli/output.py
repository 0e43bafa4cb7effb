"""Everything the CLI prints in a fixed shape: docker-style tables, JSON, ages and state words.

Tables are laid out the way docker's ``tabwriter`` does it (cells padded by 3 spaces, at least 10
wide, last column unpadded), as plain text so that piping ``shoal svc ls`` through ``grep`` or
``awk`` works like piping ``docker service ls``. ``--format json`` prints what docker prints: a list command
one compact JSON object per line (the row's fields, as ``{{json .}}`` sees them, keys sorted), an
inspect command one compact JSON array; ``-q`` prints only ids, so scripts never have to parse a table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from shoal.cli.format import is_template
from shoal.proto import types_pb2

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from shoal.cli.format import Format

MIN_WIDTH = 10
PADDING = 3
MAX_ERR_LENGTH = 30  # docker's task error truncation

FORMAT_OPTION_HELP = (
    "Output format: table (default), json (one JSON object per line), or a Go template as docker takes it: "
    "'{{.Name}}', '{{json .}}', 'table {{.ID}}\\t{{.Name}}'"
)


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


def emit_list(
    fmt: str,
    quiet: bool,
    headers: Sequence[str],
    records: Sequence[dict[str, Any]],
    table_row: Callable[[dict[str, Any]], Sequence[str]],
    template_record: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> None:
    """Print a list command's result as -q ids, JSON lines, a table, or through a ``--format`` template.

    ``records`` are the JSON objects (full ids under "ID"); ``table_row`` turns one into table cells;
    ``template_record`` (default: the record itself) is what a template sees, e.g. with the id cut short
    as the table shows it, as docker's ``{{.ID}}`` is. ``json`` is docker's ``{{json .}}`` on that view, one
    object per line (nothing at all for an empty list).
    """
    view = template_record or (lambda r: r)
    if quiet:
        for rec in records:
            click.echo(rec["ID"])
    elif fmt.strip().lower() == "json":
        click.echo("".join(json_line(view(r)) + "\n" for r in records), nl=False)
    elif is_template(fmt):
        click.echo(_render(fmt, lambda f: f.render_list([view(r) for r in records])), nl=False)
    else:
        click.echo(format_table(headers, [table_row(r) for r in records]))


def emit_objects(fmt: str | None, objects: Sequence[Any], pretty: Callable[[Any], str] | None = None) -> None:
    """Print ``inspect`` results: an indented JSON array, each object through a ``--format`` template,
    ``pretty``, or with ``--format json`` the array compact on one line (docker's ``NewJSONInspector``)."""
    if fmt and fmt.strip().lower() == "json":
        click.echo(json.dumps(list(objects), separators=(",", ":"), ensure_ascii=False))
    elif fmt and is_template(fmt):
        click.echo(_render(fmt, lambda f: f.render_each(objects)), nl=False)
    elif pretty is not None:
        click.echo("\n\n".join(pretty(o) for o in objects))
    else:
        print_json(list(objects))


def _render(fmt: str, run: Callable[[Format], str]) -> str:
    """Parse and run a template; a bad one (or one naming a field that does not exist) is a usage error."""
    from shoal.cli.format import Format
    from shoal.cli.template import TemplateError

    try:
        return run(Format.parse(fmt))
    except TemplateError as exc:
        raise click.UsageError(f"--format: {exc}") from None


def _check_format(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse a template that does not parse before the command talks to anyone."""
    if value and is_template(value):
        from shoal.cli.format import Format
        from shoal.cli.template import TemplateError

        try:
            Format.parse(value)
        except TemplateError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
    return value


def message_dict(msg: Message) -> dict[str, Any]:
    """A protobuf message as the dict ``inspect`` prints (proto field names, defaults omitted)."""
    from google.protobuf import json_format

    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def json_line(record: Mapping[str, Any]) -> str:
    """One list row as docker's ``--format json`` prints it: compact, keys sorted (Go marshals a map so)."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=4))


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
    return types_pb2.TaskState.Name(state).lower()


def pretty_state(state: int) -> str:
    """TaskState.RUNNING -> "Running" (docker's ``PrettyPrint``)."""
    return state_word(state).capitalize()


def mode_name(mode: int) -> str:
    """ServiceSpec.Mode -> "replicated", "global", "replicated job", "global job"."""
    return types_pb2.ServiceSpec.Mode.Name(mode).lower().replace("_", " ")


def quote_error(err: str, trunc: bool = True) -> str:
    """A task error as docker's ps shows it: quoted, cut to 30 characters with an ellipsis."""
    if trunc and len(err) > MAX_ERR_LENGTH:
        err = err[: MAX_ERR_LENGTH - 1] + "…"
    return f'"{err}"' if err else ""


SERVICE_FILTER_VALUES = {"mode": ("replicated", "global", "replicated-job", "global-job")}
TASK_FILTER_VALUES = {"desired-state": ("running", "shutdown", "accepted")}


def parse_filters(
    values: Iterable[str], allowed: Sequence[str], choices: dict[str, Sequence[str]] | None = None
) -> dict[str, list[str]]:
    """``["name=web", "name=api"]`` -> ``{"name": ["web", "api"]}``; unknown keys (and, for keys in
    ``choices``, values outside them) are usage errors."""
    out: dict[str, list[str]] = {}
    for v in values:
        key, sep, val = v.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            raise click.UsageError(f"bad format of filter (expected name=value): {v}")
        if key not in allowed:
            raise click.UsageError(f"invalid filter '{key}' (allowed: {', '.join(allowed)})")
        wanted = (choices or {}).get(key)
        if wanted is not None and val.lower() not in wanted:
            raise click.UsageError(f"invalid value for filter '{key}': {val!r} (expected {', '.join(wanted)})")
        out.setdefault(key, []).append(val)
    return out


format_option = click.option(
    "--format",
    "fmt",
    default="table",
    show_default=True,
    callback=_check_format,
    help=FORMAT_OPTION_HELP,
)
inspect_format_option = click.option(
    "-f",
    "--format",
    "fmt",
    default=None,
    callback=_check_format,
    help="Format the output using the given Go template ('{{.Spec.Name}}', '{{json .Spec}}')",
)
quiet_option = click.option("-q", "--quiet", is_flag=True, help="Only display IDs")
