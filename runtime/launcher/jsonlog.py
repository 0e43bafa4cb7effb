"""The launcher's own log: JSON lines on stderr, shaped like shoal.log's, without structlog.

The launcher forks every container, and fork() plus the child's copy-on-write faults and the
execve teardown all grow with the launcher's memory (findings, pitfall 6). structlog pulls in
rich, asyncio and ssl (about 14 MB of the launcher's 29 MB RSS and 130 ms of imports), so the
launcher logs through this instead: ``get(name).info("event", key=value)`` writes
``{"event": ..., key: value, "level": "info", "logger": name, "timestamp": ...}``, the same keys
the daemons' structlog JSON renderer emits.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from typing import Any

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_threshold = LEVELS["info"]


def setup(level: str = "info") -> None:
    """Drop records below ``level`` (debug, info, warning, error)."""
    global _threshold
    _threshold = LEVELS.get(level.lower(), LEVELS["info"])


def _timestamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


class Logger:
    """structlog's calling convention (event plus keyword fields) for one named component."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _emit(self, level: str, event: str, fields: dict[str, Any], exc_info: bool = False) -> None:
        if LEVELS[level] < _threshold:
            return
        record = {"event": event, **fields, "level": level, "logger": self.name, "timestamp": _timestamp()}
        if exc_info:
            record["exception"] = traceback.format_exc()
        try:
            os.write(2, (json.dumps(record, default=str) + "\n").encode("utf-8", "replace"))
        except OSError:
            pass  # a log line is never worth failing an operation

    def debug(self, event: str, **fields: Any) -> None:
        self._emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit("error", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._emit("error", event, fields, exc_info=True)


def get(name: str) -> Logger:
    return Logger(name)
