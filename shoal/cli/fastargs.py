"""The command line as click would parse it, for the few commands the ``shoal`` executable answers
without loading click (entry.py): the root options, then one command's options.

Importing click and building its command objects costs a short process 40-50 ms, close to half of
what ``shoal svc ls`` or ``shoal run --rm IMAGE true`` may take in all. These functions parse the
ordinary shapes of a command line exactly as click does -- ``-xVALUE``, ``-x VALUE``, ``--name VALUE``,
``--name=VALUE``, flags, repeated options (the last wins, or all are kept for a multiple one), options
ending at the first argument -- and answer None for anything else: a help flag, an unknown option, a
missing value, clustered short flags, a value that itself looks like an option, ``--``. None means
"not sure": the caller then hands the whole command line to click, which prints the usage error or
help as it always has. Saying None too often costs only time; parsing differently from click would
be a bug, which tests/unit/test_cli_fastargs.py checks against click itself.
"""

from __future__ import annotations

from shoal.cli.defaults import DEFAULT_HOST

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs the fast paths ~10 ms to import
    from collections.abc import Mapping, Sequence
    from typing import Any

FLAG, VALUE, MULTIPLE = "flag", "value", "multiple"


class Opt:
    """One option: where its value goes, its spellings (``-f``, ``--filter``), FLAG, VALUE or MULTIPLE,
    and ``convert`` for a typed value (``int``, ``float``; a ValueError makes the parse None).

    (Plain classes here, not dataclasses: ``dataclasses`` imports ``inspect``, ~10 ms.)"""

    __slots__ = ("convert", "dest", "kind", "names")

    def __init__(self, dest: str, names: tuple[str, ...], kind: str = VALUE, convert: Any = None) -> None:
        self.dest, self.names, self.kind, self.convert = dest, names, kind, convert


ROOT_OPTIONS = (
    Opt("host", ("-H", "--host")),
    Opt("tlscacert", ("--tlscacert",)),
    Opt("tlscert", ("--tlscert",)),
    Opt("tlskey", ("--tlskey",)),
    Opt("lab", ("--lab",)),
)


def parse(args: Sequence[str], opts: Sequence[Opt]) -> tuple[dict[str, Any], list[str]] | None:
    """``(values given, the arguments from the first non-option on)``, or None when unsure (see above).

    ``values`` holds only the options given (typed by ``convert``; MULTIPLE ones as tuples, in order)."""
    by_name = {name: opt for opt in opts for name in opt.names}
    values: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return None
        if not arg.startswith("-") or arg == "-":
            break
        if arg.startswith("--"):
            name, eq, attached = arg.partition("=")
            opt = by_name.get(name)
            given: str | None = attached if eq else None
        else:
            name, rest = arg[:2], arg[2:]
            opt = by_name.get(name)
            given = rest or None
            if rest and opt is not None and (opt.kind == FLAG or rest.startswith("=")):
                return None  # -qd (a cluster) or -e=X (click keeps the "=")
        if opt is None:
            return None
        if opt.kind == FLAG:
            if given is not None:
                return None
            values[opt.dest] = True
            i += 1
            continue
        if given is None:
            if i + 1 >= len(args) or args[i + 1].startswith("-"):
                return None
            given, i = args[i + 1], i + 2
        else:
            i += 1
        try:
            value = opt.convert(given) if opt.convert else given
        except ValueError:
            return None
        if opt.kind == MULTIPLE:
            values[opt.dest] = (*values.get(opt.dest, ()), value)
        else:
            values[opt.dest] = value
    return values, list(args[i:])


class Root:
    """What the root options decide for a command that runs without click: the manager address as
    the commands see it (``obj["host"]``), whether it came from the command line, and the rest."""

    __slots__ = ("host", "host_given", "rest")

    def __init__(self, host: str, host_given: bool, rest: list[str]) -> None:
        self.host, self.host_given, self.rest = host, host_given, rest


def parse_root(args: Sequence[str], environ: Mapping[str, str]) -> Root | None:
    """The root group's options (``-H``, ``--tls*``, ``--lab``); None when click must decide, or
    when a lab is named (``--lab``/SHOAL_LAB: its address comes from the lab engine)."""
    parsed = parse(args, ROOT_OPTIONS)
    if parsed is None:
        return None
    values, rest = parsed
    if values.get("lab") or environ.get("SHOAL_LAB"):
        return None
    host = values["host"] if "host" in values else (environ.get("SHOAL_HOST") or DEFAULT_HOST)
    return Root(host=host or DEFAULT_HOST, host_given="host" in values, rest=rest)


def env_default(environ: Mapping[str, str], name: str, default: str) -> str:
    """An option's ``envvar`` as click reads it: the variable when set and not empty, else the default."""
    return environ.get(name) or default
