"""Request connections from ``Runtime`` to the launcher, kept open and reused between calls.

Every call used to open a fresh unix-socket connection and close it after the reply: an
asyncio connect, an accept and a selector registration in the launcher, and two closes, about
0.3 ms of the ~1 ms a call cost the client; a container's run is at least four calls (create,
start, wait, delete). A connection is now *checked out* for one request and its reply, then put
back idle. Concurrent callers simply get different connections (the launcher serves each
connection's requests in order), and a long ``wait`` holds its connection until the container
exits. A connection whose reply never came (the call was cancelled, e.g. ``stop``'s grace timer
on a ``wait``) or that failed is closed, never reused. ``exec`` keeps a dedicated connection: the
launcher hands it over to the exec helper.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from shoal.runtime import protocol
from shoal.runtime.errors import ContainerError, from_wire

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
MAX_IDLE = 8


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: dict[str, Any]
) -> dict[str, Any]:
    """Send one request and read its reply; raises the launcher's error, or on a closed connection."""
    writer.write(protocol.encode(request))
    await writer.drain()
    line = await reader.readline()
    if not line:
        raise ConnectionResetError("launcher closed the connection")
    reply = protocol.decode(line)
    if not reply.get("ok"):
        raise from_wire(reply.get("error") or {})
    return reply


async def hang_up(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ConnectionError, RuntimeError):
        writer.close()
        await writer.wait_closed()


class Pool:
    """Idle connections to one launcher, each bound to the event loop that opened it."""

    def __init__(self, connect: Callable[[], Awaitable[Conn]]) -> None:
        self._connect = connect
        self._idle: list[tuple[asyncio.AbstractEventLoop, Conn]] = []

    async def call(self, request: dict[str, Any]) -> dict[str, Any]:
        conn = self._take() or await self._connect()
        reader, writer = conn
        try:
            reply = await exchange(reader, writer, request)
        except ContainerError:
            self._give_back(conn)  # the launcher's error reply came whole
            raise
        except BaseException:
            _abort(writer)  # cancelled (a reply may still come) or broken: out of step for good
            raise
        self._give_back(conn)
        return reply

    def _take(self) -> Conn | None:
        loop = asyncio.get_running_loop()
        while self._idle:
            owner, (reader, writer) = self._idle.pop()
            if owner is loop and not writer.is_closing() and not reader.at_eof():
                return reader, writer
            _abort(writer)
        return None

    def _give_back(self, conn: Conn) -> None:
        if len(self._idle) < MAX_IDLE and not conn[1].is_closing():
            self._idle.append((asyncio.get_running_loop(), conn))
        else:
            _abort(conn[1])

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        loop = asyncio.get_running_loop()
        for owner, (_, writer) in idle:
            if owner is loop:
                await hang_up(writer)
            else:
                _abort(writer)


def _abort(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.transport.abort()
