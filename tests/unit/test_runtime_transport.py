"""client/transport.py: pooled request connections to the launcher, against a fake launcher (a unix
socket server speaking the JSON-lines protocol) in the test's event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shoal.runtime import ContainerNotFound, protocol
from shoal.runtime.client import transport


class FakeLauncher:
    """Answers each request line; ``wait`` never answers; counts the connections it accepted."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.accepted = 0
        self.server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> FakeLauncher:
        self.server = await asyncio.start_unix_server(self._serve, self.path)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        while line := await reader.readline():
            req = protocol.decode(line)
            if req["op"] == "wait":
                continue
            if req["op"] == "inspect" and req.get("id") == "ghost":
                reply = protocol.error(ContainerNotFound("no such container: ghost"))
            else:
                reply = protocol.ok(echo=req["op"])
            writer.write(protocol.encode(reply))
            await writer.drain()
        writer.close()

    async def connect(self) -> transport.Conn:
        return await asyncio.open_unix_connection(self.path)


@pytest.fixture
def sock(tmp_path: Path) -> str:
    return str(tmp_path / "l.sock")


async def test_sequential_calls_reuse_one_connection(sock: str) -> None:
    async with FakeLauncher(sock) as fake:
        pool = transport.Pool(fake.connect)
        for op in ("list", "inspect", "list"):
            assert (await pool.call({"op": op}))["echo"] == op
        assert fake.accepted == 1
        await pool.close()


async def test_concurrent_calls_get_their_own_connections(sock: str) -> None:
    async with FakeLauncher(sock) as fake:
        pool = transport.Pool(fake.connect)
        replies = await asyncio.gather(*(pool.call({"op": f"op{i}"}) for i in range(3)))
        assert [r["echo"] for r in replies] == ["op0", "op1", "op2"]
        assert fake.accepted == 3
        await pool.call({"op": "again"})
        assert fake.accepted == 3, "the idle connections are reused"
        await pool.close()


async def test_an_error_reply_keeps_the_connection(sock: str) -> None:
    async with FakeLauncher(sock) as fake:
        pool = transport.Pool(fake.connect)
        with pytest.raises(ContainerNotFound, match="no such container: ghost"):
            await pool.call({"op": "inspect", "id": "ghost"})
        assert (await pool.call({"op": "list"}))["echo"] == "list"
        assert fake.accepted == 1
        await pool.close()


async def test_a_cancelled_call_never_returns_its_connection(sock: str) -> None:
    async with FakeLauncher(sock) as fake:
        pool = transport.Pool(fake.connect)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pool.call({"op": "wait", "id": "c1"}), timeout=0.05)
        assert (await pool.call({"op": "list"}))["echo"] == "list"
        assert fake.accepted == 2, "a late wait reply must not be read as the next call's"
        await pool.close()


async def test_exchange_raises_when_the_launcher_hangs_up(sock: str) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.close()

    server = await asyncio.start_unix_server(hang_up, sock)
    try:
        reader, writer = await asyncio.open_unix_connection(sock)
        with pytest.raises(ConnectionResetError, match="launcher closed the connection"):
            await transport.exchange(reader, writer, {"op": "list"})
        await transport.hang_up(writer)
        await transport.hang_up(writer)  # twice: harmless
    finally:
        server.close()


async def test_idle_connections_are_capped(sock: str) -> None:
    async with FakeLauncher(sock) as fake:
        pool = transport.Pool(fake.connect)
        n = transport.MAX_IDLE + 3
        await asyncio.gather(*(pool.call({"op": "list"}) for _ in range(n)))
        assert fake.accepted == n and len(pool._idle) == transport.MAX_IDLE
        await pool.close()
        assert pool._idle == []
