"""Where an event loop spends a stall: a watcher thread samples the loop thread's stack while it is late.

A manager whose loop does not run for seconds misses heartbeats and, past its lease keeper's patience,
its leadership; the loop's own stall log says *that* it stalled, not *where*. The watcher (py-spy in a
few lines, built in): the loop sets a beat every ``beat_s``; a daemon thread checks it and, while the beat
is more than ``threshold_s`` late, takes the loop thread's stack every ``sample_s``. When the loop beats
again, one log line gives the stall's length and its most frequent stacks (innermost frames last).

A stall spent in C code that holds the GIL (a cyclic garbage collection, a large message parsed) shows
few samples, all at the callback that resumed: so garbage collections longer than the threshold are
logged too (``gc.callbacks``), with their generation and how many objects they freed.

Off unless ``SHOAL_LOOP_WATCH_S`` sets the threshold (seconds): it is a diagnostic, and sampling a
stack takes the GIL from a loop that is already late. The counting is pure (``summarize``) and tested.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
import time
import traceback
from collections import Counter
from types import FrameType

from shoal import log

_log = log.get(__name__)
ENV = "SHOAL_LOOP_WATCH_S"


def stack_of(frame: FrameType | None, depth: int = 8) -> str:
    """The ``depth`` innermost frames of a stack as ``file:line function`` joined by `` < ``."""
    frames = traceback.extract_stack(frame, limit=depth) if frame is not None else []
    return " > ".join(f"{os.path.basename(f.filename)}:{f.lineno} {f.name}" for f in frames)


def summarize(samples: list[str], top: int = 3) -> list[tuple[str, int]]:
    """The ``top`` most frequent stacks with their sample counts."""
    return Counter(samples).most_common(top)


class LoopWatch:
    def __init__(self, threshold_s: float, beat_s: float = 0.05, sample_s: float = 0.02) -> None:
        self.threshold_s, self.beat_s, self.sample_s = threshold_s, beat_s, sample_s
        self.beat_at = time.monotonic()
        self._stop = threading.Event()
        self._loop_thread = threading.get_ident()
        self._gc_started = time.monotonic()

    async def run(self) -> None:
        """Beat from the loop while the watcher thread runs (until cancelled)."""
        self._loop_thread = threading.get_ident()
        thread = threading.Thread(target=self._watch, name="loopwatch", daemon=True)
        thread.start()
        gc.callbacks.append(self._gc)
        try:
            while True:
                self.beat_at = time.monotonic()
                await asyncio.sleep(self.beat_s)
        finally:
            self._stop.set()
            gc.callbacks.remove(self._gc)

    def _gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_started = time.monotonic()
        elif (took := time.monotonic() - self._gc_started) > self.threshold_s:
            _log.warning("long garbage collection", took_s=round(took, 3), generation=info.get("generation"),
                         collected=info.get("collected"), tracked=len(gc.get_objects(info.get("generation", 2))))  # fmt: skip

    def _watch(self) -> None:
        samples: list[str] = []
        started = 0.0
        while not self._stop.wait(self.sample_s):
            late = time.monotonic() - self.beat_at - self.beat_s
            if late > self.threshold_s:
                if not samples:
                    started = self.beat_at
                samples.append(stack_of(sys._current_frames().get(self._loop_thread)))
            elif samples:
                stall = time.monotonic() - started
                _log.warning("event loop stall sampled", stall_s=round(stall, 3), samples=len(samples),
                             stacks=[f"{n}x {s}" for s, n in summarize(samples)])  # fmt: skip
                samples = []


def from_env() -> LoopWatch | None:
    """A watcher if ``SHOAL_LOOP_WATCH_S`` is set to a positive number, else None."""
    try:
        threshold = float(os.environ.get(ENV, "") or 0)
    except ValueError:
        return None
    return LoopWatch(threshold) if threshold > 0 else None
