"""Printing as click does, for the commands the ``shoal`` executable answers without click (entry.py).

``click.echo`` strips ANSI escape sequences from text bound for something other than a terminal, and
a ClickException is shown as ``Error: MESSAGE`` on stderr with status 1; the fast paths print the
same bytes with these two functions. ``click.echo`` also re-wraps a stream whose encoding is ASCII:
for non-ASCII text on such a stream these functions write nothing and answer None, so that a fast path
that has changed nothing yet (``svc ls``) can hand the command to click.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs the fast paths ~10 ms to import
    from typing import TextIO

ANSI = r"\033\[[0-?]*[ -/]*[@-~]"  # the escape sequences click.echo strips (click._compat._ansi_re)


def echo(text: str, stream: TextIO | None = None, force: bool = False) -> int | None:
    """Write ``text`` as ``click.echo(text, nl=False)``: 0; 1 on a closed pipe (as click's main); None
    when click would have written it differently (see above), unless ``force``: write it all the same."""
    stream = stream or sys.stdout
    if "\x1b" in text and not stream.isatty():
        import re

        text = re.sub(ANSI, "", text)
    if not force and not text.isascii() and (getattr(stream, "encoding", None) or "ascii").lower().replace("-", "") in ("ascii", "usascii", "ansi_x3.41968"):
        return None
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())  # no second error at exit
        return 1
    return 0


def fail(message: str, force: bool = False) -> int | None:
    """``Error: MESSAGE`` on stderr as click shows a ClickException: 1 (None as ``echo``)."""
    if echo(f"Error: {message}\n", sys.stderr, force) is None:
        return None
    return 1
