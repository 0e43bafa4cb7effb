"""The ``shoal`` executable: the commands a user runs most are answered without loading click.

A command line that a fast path understands fully runs there (``svc ls``: fastsvc.py; ``run``:
fastrun.py); every other one -- and any a fast path is unsure of, which it says by returning None
before it has done anything -- goes to the click group ``shoal.cli.main:main`` unchanged, so help,
usage errors and every other command behave exactly as they always have. Importing this module
loads nothing beyond what Python itself has loaded at start-up.
"""

from __future__ import annotations

import os
import sys


def fast(args: list[str]) -> int | None:
    """The exit status of a command answered without click, or None to leave it to click."""
    from shoal.cli import fastargs

    root = fastargs.parse_root(args, os.environ)
    if root is None or not root.rest:
        return None
    command, rest = root.rest[0], root.rest[1:]
    if command in ("service", "svc"):
        from shoal.cli import fastsvc

        return fastsvc.svc_ls(root, rest)
    if command == "run":
        from shoal.cli import fastrun

        return fastrun.run(root, rest)
    return None


def main() -> None:
    """The console script (pyproject.toml): a fast path, else click."""
    try:
        status = fast(sys.argv[1:])
    except KeyboardInterrupt:  # as click's main says it
        sys.stderr.write("\nAborted!\n")
        sys.exit(1)
    if status is not None:
        sys.exit(status)
    from shoal.cli.main import main as click_main

    click_main()
