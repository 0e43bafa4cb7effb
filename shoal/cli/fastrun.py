"""``shoal run`` without click: the command whose start-up a user feels most, as with ``docker run``.

When the command line is one fastargs.py reads exactly as click would (every ``run`` flag of the one
table in runflags.py, ``--root``/SHOAL_ROOT), the user is root, names no cluster (``-H``/``--lab``) and
no ``--network``, and every flag value is usable, the container is run by the same code the click
command runs (runcontainer.run_here). Anything else returns None before any work and click runs the
command as it always has: ``--help``, a usage error or bad value (click words it), a refusal to act
locally when a cluster is named. Errors once the run is under way are the click command's: ``Error:
MESSAGE`` on stderr and status 1.
"""

from __future__ import annotations

import os
from typing import Any

from shoal.cli import fastargs
from shoal.cli.fastout import fail


def options() -> tuple[fastargs.Opt, ...]:
    """Every option ``run`` takes: the table's, then ``--root``."""
    from shoal.cli.runflags import ROOT_FLAG, RUN_FLAGS

    return (*(opt for opt, _ in RUN_FLAGS), ROOT_FLAG)


def run(root: fastargs.Root, args: list[str]) -> int | None:
    """``run ARGS`` (after ``run``): the exit status, or None to leave it to click."""
    if root.host_given or os.geteuid() != 0:
        return None  # click refuses both (a cluster named on the command line; not root)
    parsed = fastargs.parse(args, options())
    if parsed is None or not parsed[1]:
        return None
    values, (image, *command) = parsed
    from shoal.cli.local import DEFAULT_ROOT
    from shoal.cli.runflags import BadValue, build_config, probe_config
    from shoal.runtime import ConfigError

    o: dict[str, Any] = {opt.dest: values.get(opt.dest, _default(opt)) for opt in options()}
    remove, detach, name, state_dir = o.pop("remove"), o.pop("detach"), o.pop("name"), o.pop("root")
    if o.get("network") is not None or state_dir == "":
        return None
    try:
        probe_config(image, o)
        build_config(image, tuple(command), o, "probe", "probe", dict(os.environ))  # every value usable
    except (ConfigError, BadValue):
        return None
    if state_dir is None:
        state_dir = fastargs.env_default(os.environ, "SHOAL_ROOT", DEFAULT_ROOT)
    return _run(state_dir, image, tuple(command), o, name, remove, detach)


def _default(opt: fastargs.Opt) -> Any:
    if opt.kind == fastargs.FLAG:
        return False
    if opt.kind == fastargs.MULTIPLE:
        return ()
    return 0 if opt.convert is int else None


def _run(state_dir: str, image: str, command: tuple[str, ...], o: dict[str, Any], name: str | None,
         remove: bool, detach: bool) -> int | None:
    from shoal.cli.local import sync_runtime
    from shoal.cli.runcontainer import Refused, run_here
    from shoal.runtime import ContainerError

    try:
        with sync_runtime(state_dir) as rt:
            return run_here(rt, image, command, o, name, remove, detach, dict(os.environ))
    except (Refused, ContainerError) as exc:
        return fail(str(exc), force=True)  # the runtime was asked: no handing over to click now
