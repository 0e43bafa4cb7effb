"""``Runtime.exec``'s client half: one dedicated connection that streams output and stdin.

The launcher hands the connection to an exec helper (launcher/child/exec.py), which sends
``{"event":"started"}``, then ``{"out": <base64>}`` lines, then ``{"exit_code": N, ...}``; this side
may send ``{"stdin": <base64>}`` lines and ``{"stdin_eof": true}``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from shoal.runtime import protocol
from shoal.runtime.client import transport
from shoal.runtime.config import ExecResult
from shoal.runtime.errors import ContainerError, from_wire

EXEC_OUTPUT_CAP = protocol.EXEC_OUTPUT_CAP
"""``Runtime.exec`` keeps the last this many bytes of output."""


class OutputTail:
    """The last ``cap`` bytes of a stream, kept as chunks (``Runtime.exec``'s output)."""

    def __init__(self, cap: int = EXEC_OUTPUT_CAP) -> None:
        self.cap = cap
        self.chunks: list[bytes] = []
        self.size = 0

    def __call__(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        while self.size - len(self.chunks[0]) >= self.cap:
            self.size -= len(self.chunks.pop(0))

    def value(self) -> bytes:
        return b"".join(self.chunks)[-self.cap :]


async def stream(
    conn: transport.Conn,
    request: dict[str, Any],
    on_output: Callable[[bytes], None],
    stdin: AsyncIterator[bytes] | None,
) -> ExecResult:
    """Send the exec request on ``conn`` and relay until the exit code arrives; closes ``conn``."""
    reader, writer = conn
    feeder: asyncio.Task[None] | None = None
    try:
        writer.write(protocol.encode(request))
        await writer.drain()
        while True:
            line = await reader.readline()
            if not line:
                raise ContainerError(f"exec in {request['id']}: the launcher closed the connection")
            msg = protocol.decode(line)
            if not msg.get("ok"):
                raise from_wire(msg.get("error") or {})
            if "out" in msg:
                on_output(base64.b64decode(msg["out"]))
            elif msg.get("event") == "started" and stdin is not None:
                feeder = asyncio.ensure_future(_feed_stdin(writer, stdin))
            elif "exit_code" in msg:
                if msg.get("error"):
                    on_output(msg["error"].encode() + b"\n")
                return ExecResult(int(msg["exit_code"]), b"", bool(msg.get("timed_out")))
    finally:
        if feeder is not None:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await feeder
        await transport.hang_up(writer)


async def _feed_stdin(writer: asyncio.StreamWriter, stdin: AsyncIterator[bytes]) -> None:
    async for data in stdin:
        writer.write(protocol.encode({"stdin": base64.b64encode(data).decode()}))
        await writer.drain()
    writer.write(protocol.encode({"stdin_eof": True}))
    await writer.drain()
