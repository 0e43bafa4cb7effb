"""Reading a container's log: docker's json-file records, across the rotated files, oldest first.

The log daemon (``launcher/logshim.py``) writes ``ctr.log`` and rotates it to ``ctr.log.1`` ... up to
``MAX_FILES - 1``; these readers are plain functions any process on the node can use (``shoal logs``,
the worker's log streaming, tests).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

MAX_SIZE = 10 << 20
"""The log daemon rotates ``ctr.log`` once it would grow past this many bytes."""
MAX_FILES = 3
"""``ctr.log`` and up to this many minus one rotated files are kept."""


def files(path: str) -> list[str]:
    """The log's files, oldest first (``ctr.log.N`` ... ``ctr.log.1``, then ``ctr.log``): as many as the
    container's ``max-file`` kept, so the readers need not know it."""
    rotated = []
    while os.path.exists(f"{path}.{len(rotated) + 1}"):
        rotated.append(f"{path}.{len(rotated) + 1}")
    return [*reversed(rotated), *([path] if os.path.exists(path) else [])]


def parse(line: bytes) -> dict | None:
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) and "log" in rec else None


def records(path: str) -> Iterator[dict]:
    """Every record of a container's log (rotated files included), oldest first."""
    for p in files(path):
        try:
            with open(p, "rb") as f:
                for line in f:
                    rec = parse(line)
                    if rec is not None:
                        yield rec
        except FileNotFoundError:
            continue


def text(path: str) -> str:
    """The log as the container wrote it (both streams, in arrival order)."""
    return "".join(r["log"] for r in records(path))
