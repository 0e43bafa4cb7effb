"""Forwarding a DNS query that is not about a service to the node's own resolvers, byte for byte.

The query is sent unchanged (same id, same EDNS options) to each upstream in turn until one answers
within the timeout; its reply is relayed unchanged. Over UDP a reply is only taken from the upstream
the query went to and only with the query's id, so a stray or spoofed datagram is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence


class _Reply(asyncio.DatagramProtocol):
    """Waits for the first datagram carrying the query's id."""

    def __init__(self, qid: bytes) -> None:
        self.qid = qid
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data[:2] == self.qid and not self.done.done():
            self.done.set_result(data)

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable
        if not self.done.done():
            self.done.set_exception(exc)


async def _udp(wire: bytes, server: tuple[str, int], timeout: float) -> bytes:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(lambda: _Reply(wire[:2]), remote_addr=server)
    try:
        transport.sendto(wire)
        async with asyncio.timeout(timeout):
            return await proto.done
    finally:
        transport.close()


async def _tcp(wire: bytes, server: tuple[str, int], timeout: float) -> bytes:
    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection(*server)
        try:
            writer.write(len(wire).to_bytes(2, "big") + wire)
            await writer.drain()
            size = int.from_bytes(await reader.readexactly(2), "big")
            return await reader.readexactly(size)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async with asyncio.timeout(timeout):
        return await exchange()


async def forward(wire: bytes, upstreams: Sequence[tuple[str, int]], timeout: float, tcp: bool) -> bytes | None:
    """The first upstream reply to the raw query ``wire`` (over TCP when ``tcp``), or None if none answered."""
    if len(wire) < 12:
        return None
    for server in upstreams:
        try:
            return await (_tcp if tcp else _udp)(wire, server, timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            continue
    return None
