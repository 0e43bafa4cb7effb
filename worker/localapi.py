"""The agent's local API server (``shoal.agentapi`` says what it is and speaks): root callers on this node only.

One request per connection, answered with one line. The socket lives in the abstract namespace of the
node's network namespace (made there, even when the agent runs in another one), so it needs no file
and goes away with the agent; as an abstract socket has no file permissions, every caller's credentials
are checked (``SO_PEERCRED``): only root is served.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from shoal import agentapi, log
from shoal.worker.attachments import AttachmentError, Attachments
from shoal.worker.network.netns import run_in

_log = log.get(__name__)
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a unix socket."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def handler_for(attached: Attachments) -> Handler:
    """The requests ``attached`` answers (attach, started, detach)."""

    async def handle(req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "attach":
            return await attached.attach(str(req.get("network", "")), str(req.get("container_id", "")),
                                         str(req.get("container_name", "")))
        if op == "started":
            attached.started(str(req.get("attachment", "")))
            return {}
        if op == "detach":
            att_id = str(req.get("attachment", ""))
            if att_id in attached.ids():
                await attached.release(att_id)
            return {}
        return {"error": f"unknown request {op!r}"}

    return handle


async def _serve_one(handle: Handler, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        async with asyncio.timeout(10.0):  # read first: a caller still writing would see its refusal lost
            line = await reader.readline()
        sock = writer.get_extra_info("socket")
        if sock is None or peer_uid(sock) != 0:
            writer.write(agentapi.encode({"error": "the node agent serves root only"}))
            await writer.drain()
            return
        try:
            answer = await handle(agentapi.decode(line))
        except (AttachmentError, agentapi.AgentApiError) as exc:
            answer = {"error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a manager's refusal or a plumbing failure: tell the caller
            _log.warning("local API request failed", error=str(exc))
            answer = {"error": str(exc) or type(exc).__name__}
        writer.write(agentapi.encode(answer))
        await writer.drain()
    except (ConnectionError, OSError, TimeoutError):
        pass
    finally:
        writer.close()


def _bind(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


async def serve(handle: Handler, address: str | None = None, netns: str | None = None) -> asyncio.Server | None:
    """Listen at ``address`` (``agentapi.default_address()``) in the network namespace ``netns`` (a path; None:
    this process's). None, with a warning, when another agent already holds the name there."""
    address = address or agentapi.default_address()
    try:
        sock = run_in(netns, lambda: _bind(address))
        return await asyncio.start_unix_server(lambda r, w: _serve_one(handle, r, w), sock=sock,
                                               limit=agentapi.MAX_LINE)
    except OSError as exc:
        _log.warning("local API not served (shoal run --network will not reach this agent)",
                     address=address.lstrip("\0"), error=str(exc))
        return None
