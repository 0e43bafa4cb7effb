"""The client side of the runtime, in the caller's process: the asyncio ``Runtime`` the worker agent uses,
and the blocking ``SyncRuntime`` (sync.py) for a short-lived command such as ``shoal run``. Both validate
configs, start or find the launcher (spawn.py), and talk to it over unix-socket connections (transport.py
and exec.py for the asyncio side).

``Runtime`` is imported lazily, so ``shoal.runtime.client.sync`` does not load asyncio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shoal.runtime.client.runtime import Runtime

__all__ = ["Runtime"]


def __getattr__(name: str) -> Any:
    if name == "Runtime":
        from shoal.runtime.client.runtime import Runtime

        return Runtime
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
