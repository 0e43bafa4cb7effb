"""The node agent's local API: what ``shoal run --network`` asks the agent of its own node.

A standalone container joins a cluster network through the agent of the node it runs on (the agent
holds the node's session with a manager and its network plumbing), as ``docker run --network`` goes
through the local daemon. The API is one JSON object per line, request then answer, on a unix socket
in the abstract namespace: abstract names belong to a network namespace, so a command run on a node
(or in a lab host, ``shoal lab exec NODE -- shoal run ...``) reaches that node's agent and no other.
The agent serves it in its node's namespace, even when it runs in another one itself (tests).
The name is ``shoal-agent``; nodes that share one network namespace (``--no-network`` aside) each
need their own, given in ``$SHOAL_AGENT_SOCKET`` to the node and to ``shoal run`` alike.
The agent answers root callers only (it checks the peer's credentials).

Requests: ``{"op": "attach", "network": NAME, "container_id": ID, "container_name": NAME}`` ->
``{"attachment": ID, "netns": PATH, "resolv_conf": PATH, "address": A/P, "network": NAME}``;
``{"op": "started", "attachment": ID}`` (the container runs: from now on the agent releases the
attachment when no process is left in its namespace); ``{"op": "detach", "attachment": ID}``.
A refusal is ``{"error": MESSAGE}``.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

ADDRESS = "\0shoal-agent"
"""The agent's socket in its network namespace's abstract namespace (unless ``ENV`` names another)."""
ENV = "SHOAL_AGENT_SOCKET"
MAX_LINE = 64 * 1024


def default_address() -> str:
    """The socket the node serves and ``shoal run`` calls: ``ADDRESS``, or the abstract name in ``$SHOAL_AGENT_SOCKET``."""
    name = os.environ.get(ENV, "").strip().lstrip("\0")
    return f"\0{name}" if name else ADDRESS


class AgentApiError(Exception):
    """The agent refused a request or cannot be reached: the message says which, for the user."""


def encode(message: dict[str, Any]) -> bytes:
    """One message on the wire."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """The message a line carries; AgentApiError for anything but a JSON object."""
    try:
        msg = json.loads(line)
    except ValueError:
        raise AgentApiError("the node agent sent something that is not JSON") from None
    if not isinstance(msg, dict):
        raise AgentApiError("the node agent sent something that is not a JSON object")
    return msg


async def call(request: dict[str, Any], address: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
    """Send one request to the agent at ``address`` (``default_address()``) and return its answer (AgentApiError
    on a refusal)."""
    try:
        async with asyncio.timeout(5.0):
            reader, writer = await asyncio.open_unix_connection(address or default_address())
    except (OSError, TimeoutError):
        raise AgentApiError("no shoal node agent on this host (is `shoal worker` or `shoal manager` running "
                            "here, with networking?)") from None
    try:
        writer.write(encode(request))
        await writer.drain()
        async with asyncio.timeout(timeout):
            line = await reader.readline()
    except TimeoutError:
        raise AgentApiError(f"the node agent did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise AgentApiError(f"the node agent connection failed: {exc}") from None
    finally:
        writer.close()
    if not line:
        raise AgentApiError("the node agent closed the connection without an answer")
    answer = decode(line)
    if "error" in answer:
        raise AgentApiError(str(answer["error"]))
    return answer
