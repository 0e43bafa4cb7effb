"""Opt-in step timing of the launcher and the container child (``SHOAL_RUNTIME_TRACE=1``).

Start latency is the runtime's main performance figure, and it is spread over many small steps in
two processes (the launcher and the forked PID 1). With the variable set in the environment the
launcher is started with, each traced operation writes one line to the launcher's stderr (its
``launcher.log``)::

    shoal-trace start @t0=1234.567890 total=12.345 spec=0.040 fork=1.200 exec_wait=8.100 ...

``@t0`` is the operation's start (``time.perf_counter`` seconds: CLOCK_MONOTONIC, the same clock in
every process, so the child's line can be placed inside the launcher's); every other figure is a
delta in milliseconds since the previous mark. The child
keeps its own copy of the launcher's stderr (close-on-exec), so its line is written just before
``execve``. ``summarize`` turns a log into per-step medians (bench/runtime_start.py --trace).
Off by default; when off, ``mark`` is one global lookup and a return.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

ENV = "SHOAL_RUNTIME_TRACE"
ENABLED = os.environ.get(ENV, "") not in ("", "0")
PREFIX = "shoal-trace "

_what = ""
_last = 0.0
_t0 = 0.0
_steps: list[tuple[str, float]] = []
_fd = 2


def begin(what: str, fd: int = 2) -> None:
    """Start timing operation ``what``; its line goes to ``fd`` at ``end``."""
    global _what, _last, _t0, _fd
    if not ENABLED:
        return
    _what, _fd = what, fd
    _t0 = _last = time.perf_counter()
    _steps.clear()


def mark(step: str) -> None:
    """Record the time since the previous mark as ``step``."""
    global _last
    if not ENABLED or not _what:
        return
    now = time.perf_counter()
    _steps.append((step, now - _last))
    _last = now


def end() -> None:
    """Write the operation's line (best effort: tracing never fails an operation)."""
    global _what
    if not ENABLED or not _what:
        return
    total = time.perf_counter() - _t0
    parts = [f"{PREFIX}{_what} @t0={_t0:.6f} total={total * 1000:.3f}"]
    parts += [f"{name}={dt * 1000:.3f}" for name, dt in _steps]
    _what = ""
    try:
        os.write(_fd, (" ".join(parts) + "\n").encode())
    except OSError:
        pass


def summarize(lines: Iterable[str]) -> list[str]:
    """Per operation and step: median ms over every traced line (steps in first-seen order)."""
    import statistics  # only the bench needs it: keeps decimal/fractions out of the launcher

    table: dict[str, dict[str, list[float]]] = {}
    for line in lines:
        if not line.startswith(PREFIX):
            continue
        what, *fields = line[len(PREFIX) :].split()
        steps = table.setdefault(what, {})
        for f in fields:
            name, _, value = f.partition("=")
            if name.startswith("@"):  # an absolute time, to line up processes; no median
                continue
            try:
                steps.setdefault(name, []).append(float(value))
            except ValueError:
                continue
    out = []
    for what, steps in table.items():
        n = len(steps.get("total", []))
        cells = [f"{name}={statistics.median(v):.2f}" for name, v in steps.items()]
        out.append(f"{what} (n={n}): " + " ".join(cells))
    return out
