"""Forwarding a non-service DNS query upstream (worker/network/dnsforward.py), against real UDP and TCP
servers on loopback: the reply is relayed byte for byte, a reply with another id is ignored, a silent or
closed upstream falls through to the next one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from shoal.worker.network.dnsforward import forward

QUERY = bytes.fromhex("abcd01000001000000000000") + b"\x07example\x03com\x00\x00\x01\x00\x01"


def _answer(query: bytes) -> bytes:
    return query[:2] + b"\x81\x80" + query[4:] + b"answer"


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, reply: Callable[[bytes], list[bytes]]) -> None:
        self.reply = reply
        self.seen: list[bytes] = []

    def connection_made(self, transport: asyncio.DatagramTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.seen.append(data)
        for out in self.reply(data):
            self.transport.sendto(out, addr)


@pytest.fixture
async def udp_server() -> AsyncIterator[Callable[..., Any]]:
    transports: list[asyncio.BaseTransport] = []
    loop = asyncio.get_running_loop()

    async def start(reply: Callable[[bytes], list[bytes]]) -> tuple[tuple[str, int], _Udp]:
        transport, proto = await loop.create_datagram_endpoint(
            lambda: _Udp(reply), local_addr=("127.0.0.1", 0)
        )
        transports.append(transport)
        return transport.get_extra_info("sockname"), proto

    yield start
    for t in transports:
        t.close()


async def test_udp_reply_is_relayed_unchanged(udp_server) -> None:
    addr, proto = await udp_server(lambda q: [_answer(q)])
    assert await forward(QUERY, [addr], 1.0, tcp=False) == _answer(QUERY)
    assert proto.seen == [QUERY]  # the query went out unchanged


async def test_a_reply_with_another_id_is_ignored(udp_server) -> None:
    addr, _ = await udp_server(lambda q: [b"\x00\x00" + _answer(q)[2:], _answer(q)])
    assert await forward(QUERY, [addr], 1.0, tcp=False) == _answer(QUERY)


async def test_a_silent_upstream_falls_through_to_the_next(udp_server) -> None:
    silent, _ = await udp_server(lambda q: [])
    good, proto = await udp_server(lambda q: [_answer(q)])
    assert await forward(QUERY, [silent, good], 0.2, tcp=False) == _answer(QUERY)
    assert proto.seen == [QUERY]


async def test_none_when_no_upstream_answers(udp_server) -> None:
    silent, _ = await udp_server(lambda q: [])
    assert await forward(QUERY, [silent], 0.1, tcp=False) is None
    assert await forward(QUERY, [], 0.1, tcp=False) is None


async def test_a_query_shorter_than_a_header_is_not_sent(udp_server) -> None:
    addr, proto = await udp_server(lambda q: [_answer(q)])
    assert await forward(QUERY[:11], [addr], 0.2, tcp=False) is None
    await asyncio.sleep(0.05)
    assert proto.seen == []


async def test_tcp_uses_length_prefixed_messages_and_skips_a_closed_port() -> None:
    got: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        size = int.from_bytes(await reader.readexactly(2), "big")
        query = await reader.readexactly(size)
        got.append(query)
        reply = _answer(query)
        writer.write(len(reply).to_bytes(2, "big") + reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    closed = await asyncio.start_server(handle, "127.0.0.1", 0)
    closed_addr = closed.sockets[0].getsockname()
    closed.close()
    await closed.wait_closed()
    try:
        addr = server.sockets[0].getsockname()
        assert await forward(QUERY, [closed_addr, addr], 1.0, tcp=True) == _answer(QUERY)
        assert got == [QUERY]
    finally:
        server.close()
        await server.wait_closed()
