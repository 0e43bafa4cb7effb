"""How ``svc logs`` prints a line, and how it reads ``--since`` and ``--tail``: pure, unit-tested.

A line is prefixed as docker prefixes it: ``web.2.abcdefghijkl@node-1    | hello``; the task number
is padded to the widest slot so the bars line up, ``--no-task-ids`` drops the id, ``--no-trunc``
shows it whole, ``--no-resolve`` shows the service's and node's ids instead of their names, ``--raw`` drops the prefix and ``-t`` puts the time (RFC 3339, nanoseconds) first.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass

from shoal import ids, units
from shoal.proto import logs_pb2 as lpb


class LogOptionError(ValueError):
    """A ``--since`` or ``--tail`` value that means nothing."""


@dataclass(frozen=True)
class LineFormat:
    timestamps: bool = False
    raw: bool = False
    task_ids: bool = True
    trunc: bool = True
    slot_width: int = 1
    resolve: bool = True  # --no-resolve: the service's and the node's ids, not their names (docker's)

    def prefix(self, task: lpb.LogTask | None, timestamp_ns: int) -> str:
        out = rfc3339_nano(timestamp_ns) + " " if self.timestamps else ""
        if self.raw or task is None:
            return out
        name = (task.service_name or ids.short(task.service_id)) if self.resolve else task.service_id
        name += f".{task.slot}" if task.slot else f".{task.node_id}"
        if self.task_ids:
            name += "." + (task.task_id if not self.trunc else ids.short(task.task_id))
        pad = " " * max(0, self.slot_width - len(str(task.slot))) if task.slot else ""
        node = task.node_name or task.node_id if self.resolve else task.node_id
        return f"{out}{name}{pad}@{node}    | "

    def line(self, task: lpb.LogTask | None, line: lpb.LogLine) -> str:
        text = line.data.decode("utf-8", "replace")
        return self.prefix(task, line.timestamp_ns) + (text if text.endswith("\n") else text + "\n")


def rfc3339_nano(ns: int) -> str:
    """docker's ``RFC3339NanoFixed``: ``2024-05-01T10:00:00.000000001Z``."""
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


_NUMBER = re.compile(r"^\d+(\.\d{1,9})?$")


def parse_since(text: str, now: float | None = None) -> int:
    """``--since``: an RFC 3339 time, a unix time (``1700000000.5``) or a duration ago (``10m``) -> unix ns."""
    now = time.time() if now is None else now
    s = text.strip()
    if not s:
        return 0
    if _NUMBER.match(s):
        whole, _, frac = s.partition(".")
        return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])
    try:
        when = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        pass
    else:
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000
    try:
        ago = units.parse_duration(s)
    except units.UnitError:
        raise LogOptionError(f"invalid --since {text!r}: expected a time (2024-05-01T10:00:00Z), a unix time or a duration (10m)") from None
    return int(now * 1e9) - ago


def parse_tail(text: str) -> int:
    """``--tail``: ``all`` (-1) or a number of lines per task."""
    s = text.strip().lower()
    if s == "all":
        return -1
    if not s.isdigit():
        raise LogOptionError(f"invalid --tail {text!r}: expected a number of lines or 'all'")
    return int(s)
