"""Everything the CLI prints in a fixed shape: docker-style tables, JSON, ages and state words.

Tables are laid out the way docker's ``tabwriter`` does it (cells padded by 3 spaces, at least 10
wide, last column unpadded), as plain text so that piping ``shoal svc ls`` through ``grep`` or
``awk`` works like piping ``docker service ls``. ``--format json`` prints what docker prints: a list command
one compact JSON object per line (the row's fields, as ``{{json .}}`` sees them, keys sorted), an
inspect command one compact JSON array; ``-q`` prints only ids, so scripts never have to parse a table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click

from shoal.cli import listing
from shoal.cli.format import is_template
from shoal.cli.listing import (  # noqa: F401  (re-exported: the pure half of this module)
    MAX_ERR_LENGTH,
    MIN_WIDTH,
    PADDING,
    SERVICE_FILTER_VALUES,
    TASK_FILTER_VALUES,
    ago,
    format_table,
    human_duration,
    json_line,
    mode_name,
    pretty_state,
    quote_error,
    state_word,
)

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from shoal.cli.format import Format


FORMAT_OPTION_HELP = (
    "Output format: table (default), json (one JSON object per line), or a Go template as docker takes it: "
    "'{{.Name}}', '{{json .}}', 'table {{.ID}}\\t{{.Name}}'"
)


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
    if not quiet and fmt.strip().lower() != "json" and is_template(fmt):
        view = template_record or (lambda r: r)
        click.echo(_render(fmt, lambda f: f.render_list([view(r) for r in records])), nl=False)
    else:
        click.echo(listing.list_text(fmt, quiet, headers, records, table_row, template_record), nl=False)


def emit_objects(fmt: str | None, objects: Sequence[Any], pretty: Callable[[Any], str] | None = None) -> None:
    """Print ``inspect`` results: an indented JSON array, each object through a ``--format`` template,
    ``pretty``, or with ``--format json`` the array compact on one line (docker's ``NewJSONInspector``)."""
    if fmt and fmt.strip().lower() == "json":
        click.echo(json.dumps(list(objects), separators=(",", ":"), ensure_ascii=False))
    elif fmt and is_template(fmt):
        from shoal.cli.docker_views import field_names

        click.echo(_render(fmt, lambda f: f.render_each(objects, field_names())), nl=False)
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


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=4))


def parse_filters(
    values: Iterable[str], allowed: Sequence[str], choices: dict[str, Sequence[str]] | None = None
) -> dict[str, list[str]]:
    """``["name=web", "name=api"]`` -> ``{"name": ["web", "api"]}`` (listing.filters); a bad one is a usage error."""
    try:
        return listing.filters(values, allowed, choices)
    except listing.FilterError as exc:
        raise click.UsageError(str(exc)) from None


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
