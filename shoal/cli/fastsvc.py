"""``shoal svc ls`` without click and grpcio: the most frequent question a user asks the manager.

Through click and grpcio the command costs ~200 ms of CPU, four fifths of it loading those two. When
the command line is one this module understands fully (fastargs.py: ``-f/--filter``, ``--format``
table or json, ``-q``, the root options) and the manager is on a unix socket, it asks ListServices
over unixrpc.py, reads the reply without google.protobuf (svclswire.py: ~35 ms less to import) and
prints with the same pure functions the click command uses (service_rows.py, listing.py): the same
rows, the same ``Error: ...`` line and exit status 1 when the manager is down or refuses. Anything else -- ``--help``, a template, a bad filter, a TCP host with its TLS, a lab --
returns None and click runs the command as it always has (fastout.py prints as click.echo would).
"""

from __future__ import annotations

from shoal.cli import fastargs, hosts, listing
from shoal.cli.fastargs import FLAG, MULTIPLE, Opt
from shoal.cli.fastout import echo, fail

LS_OPTIONS = (
    Opt("filters", ("-f", "--filter"), MULTIPLE),
    Opt("fmt", ("--format",)),
    Opt("quiet", ("-q", "--quiet"), FLAG),
)
LIST_SERVICES = "/shoal.v1.Control/ListServices"


def svc_ls(root: fastargs.Root, args: list[str]) -> int | None:
    """``svc ls ARGS`` (``args`` after ``service``/``svc``): the exit status, or None to leave it to click."""
    if not args or args[0] not in ("ls", "list"):
        return None
    parsed = fastargs.parse(args[1:], LS_OPTIONS)
    if parsed is None or parsed[1]:
        return None
    values = parsed[0]
    fmt, quiet = values.get("fmt", "table"), values.get("quiet", False)
    if fmt.strip().lower() not in ("table", "json"):  # a template (or an empty one): click's
        return None
    try:
        path = hosts.unix_path(root.host)
        wanted = listing.filters(values.get("filters", ()), ("name", "id", "mode", "label"), listing.SERVICE_FILTER_VALUES)
    except (hosts.BadHost, listing.FilterError):
        return None
    if path is None:
        return None
    from shoal.cli import service_rows, svclswire, unixrpc

    try:
        raw = unixrpc.call(path, LIST_SERVICES, b"", hosts.CALL_TIMEOUT)  # an empty ListServicesRequest
        decoded = svclswire.list_services(raw)
    except unixrpc.RpcFailure as exc:
        return fail(hosts.failure_message(exc.code, exc.details, root.host, str(exc)))
    except svclswire.WireError:  # what grpcio reports as INTERNAL
        return fail(hosts.failure_message("INTERNAL", "Exception deserializing response!", root.host))
    if decoded is None:  # an enum value this shoal does not name: the generated classes decide
        return None
    records = service_rows.records(decoded[0], decoded[1], wanted)
    return echo(
        listing.list_text(fmt, quiet, service_rows.SERVICE_HEADERS, records, service_rows.service_row, service_rows.service_template_record)
    )
