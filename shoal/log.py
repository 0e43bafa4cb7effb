"""structlog setup shared by every process: JSON lines for daemons, key=value on a terminal.

stdlib logging (grpc, asyncio) is routed through the same processors so every line looks alike.
structlog is imported when a process sets logging up or first logs, not when a module asks for a
logger: importing structlog loads its console renderer and rich (~100 ms), which a short CLI command
such as ``shoal run --rm`` that logs nothing should not pay.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import structlog
    from structlog.typing import Processor


def setup(level: str = "info", json: bool | None = None) -> None:
    """Configure structlog and the stdlib root logger; call once at process start."""
    import structlog

    if json is None:
        json = not sys.stderr.isatty()
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # debug is shoal's own debug lines (timings a trace is built from: bench/timeline.py); the libraries'
    # (grpc, asyncio, pyroute2) stay at info, or their chatter would drown those lines and slow the node
    root.setLevel(max(logging.getLevelName(level.upper()), logging.INFO))
    logging.getLogger("shoal").setLevel(level.upper())


class _Deferred:
    """Stands for ``structlog.get_logger(name)`` until the first call on it, which imports structlog."""

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._logger is None:
            import structlog

            self._logger = structlog.get_logger(self._name)
        return getattr(self._logger, attr)


def get(name: str) -> structlog.stdlib.BoundLogger:
    """A logger named after the component (``shoal.manager.scheduler``)."""
    return _Deferred(name)  # type: ignore[return-value]  # it forwards every call to the BoundLogger it stands for
