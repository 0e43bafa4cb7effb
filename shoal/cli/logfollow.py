"""Printing a container's log as it grows: attached ``shoal run`` and ``shoal logs -f``.

The log daemon writes docker's json-file records to ``ctr.log`` (see shoal.runtime.logs); a ``LogTail``
reads what was appended since its last ``pump`` (whole lines only) and prints each record, stdout
records to stdout and stderr records to stderr. Who drives it decides when: ``shoal run`` pumps
whenever the container's ``wait`` reply has not come within a poll interval, and once after it
(blocking, see run.py); ``shoal logs -f`` polls from its event loop (``follow``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from shoal.runtime import logs

POLL_S = 0.05
"""How often a followed log is read while its container runs."""


class LogTail:
    """The unread end of one log file; ``skip`` records are read but not printed (already shown)."""

    def __init__(self, path: str, timestamps: bool = False, skip: int = 0) -> None:
        self.path = path
        self.timestamps = timestamps
        self.skip = skip
        self.offset = 0
        self.seen = 0

    def pump(self) -> None:
        """Print the records appended since the last call (from the start again if the file rotated)."""
        try:
            if os.path.getsize(self.path) < self.offset:
                self.offset = 0
        except FileNotFoundError:
            pass
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            chunk = b""
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        for line in chunk[:end].splitlines():
            rec = logs.parse(line)
            if rec is None:
                continue
            self.seen += 1
            if self.seen > self.skip:
                emit(rec, self.timestamps)


async def follow(path: str, finished: Callable[[], bool], timestamps: bool = False, skip: int = 0) -> None:
    """Print log records as they arrive (after the first ``skip``) until ``finished()`` and no more."""
    import asyncio

    tail = LogTail(path, timestamps, skip)
    while True:
        done = finished()
        tail.pump()
        if done:
            return
        await asyncio.sleep(POLL_S)


def emit(rec: dict, timestamps: bool) -> None:
    text = (rec["time"] + " " if timestamps else "") + rec["log"]
    stream = sys.stderr if rec.get("stream") == "stderr" else sys.stdout
    stream.write(text)
    stream.flush()
