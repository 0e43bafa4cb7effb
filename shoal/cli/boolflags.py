"""docker's boolean flags also take a value: ``--detach=false``, ``--read-only=true``, ``-d=1``.

docker's flag library reads ``--flag``, ``--flag=true`` and ``--flag=false`` alike, and scripts written
for it use the last two (``--detach=false`` was how one asked for progress). A click flag takes no value,
so before a command parses its arguments each ``--flag=VALUE`` of one of its flags becomes ``--flag``
(true), nothing (false: the flag's default), or ``--no-flag`` where the flag has that off switch.
Values are Go's ``ParseBool`` words; anything else is left for click to refuse. Only option tokens are
rewritten: option values, the arguments after ``--``, and a command line after the first argument of a
command that passes it through (``svc create IMAGE COMMAND...``) stay as they are.
"""

from __future__ import annotations

import click

TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def _flags(cmd: click.Command) -> tuple[dict[str, str | None], set[str]]:
    """This command's flags (name -> its off switch, if any) and the options that take a value."""
    flags: dict[str, str | None] = {}
    valued: set[str] = set()
    for p in cmd.params:
        if not isinstance(p, click.Option):
            continue
        if p.is_flag and not p.count:
            for name in p.opts:
                flags[name] = p.secondary_opts[0] if p.secondary_opts else None
        elif not p.is_flag and not p.count:
            valued.update(p.opts)
    return flags, valued


def rewrite(cmd: click.Command, args: list[str]) -> list[str]:
    """``args`` for ``cmd`` with its ``--flag=true|false`` written as click reads them."""
    if isinstance(cmd, click.Group):
        return args
    flags, valued = _flags(cmd)
    interspersed = cmd.context_settings.get("allow_interspersed_args", cmd.allow_interspersed_args)
    out: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == "--":
            out.append(arg)
            out.extend(rest)
            break
        name, eq, value = arg.partition("=")
        if eq and name in flags and (value in TRUE or value in FALSE):
            if value in TRUE:
                out.append(name)
            elif flags[name] is not None:
                out.append(flags[name])  # type: ignore[arg-type]  # checked just above
            continue
        out.append(arg)
        if arg in valued:  # its value is the next argument, whatever it looks like
            out.extend(v for v in [next(rest, None)] if v is not None)
        elif not arg.startswith("-") and not interspersed:
            out.extend(rest)  # the command line passed through
            break
    return out
