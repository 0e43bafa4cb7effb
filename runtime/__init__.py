"""shoal.runtime: the embedded container runtime, usable on its own and knowing nothing of clusters.

``Runtime`` (async, used from the agent's event loop and by ``shoal run``) talks to a small
single-threaded launcher process that forks each container into new pid, mount, uts, ipc and net
namespaces (optionally a user namespace) with a cgroup (v1 or v2: memory, cpu quota and shares,
pids, blkio/io weight, v1 devices allow-list), a root filesystem (the built-in ``host`` image, or
an overlayfs of an image's layers from the node's image store), its mounts and volumes, Docker's
default capabilities (``cap_add``/``cap_drop``) and no_new_privs. ``exec`` joins a running
container; ``stats`` reads its cgroup; a log daemon writes its output as timestamped JSON lines.
State, exit codes and logs live in the runtime's state directory, so containers outlive the agent
and a restarted agent re-attaches.

The package splits along its two processes: ``client/`` (the asyncio side, in the caller's process)
and ``launcher/`` (the fork server and what runs in the processes it forks), with ``image/`` (the
image store and loading) and ``cgroup/`` (v1 and v2 behind one interface) beside them. The modules
at this top level are the small pieces both processes share: the public types (config), the
validated ContainerSpec (spec), errors and the wire protocol, the state dir's paths (layout), mount
and capability rules, log readers, and the ctypes bindings (linux).

``Runtime`` is imported lazily: the launcher imports this package too, and must stay small
(fork cost grows with its memory) and free of asyncio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shoal.runtime.config import ContainerConfig, ContainerInfo, ContainerStats, ExecResult
from shoal.runtime.errors import (
    ConfigError,
    ContainerError,
    ContainerNotFound,
    ImageInUse,
    ImageLoadError,
    ImageNotFound,
    StartError,
    VolumeNotFound,
)
from shoal.runtime.files import ContainerFile

if TYPE_CHECKING:
    from shoal.runtime.client import Runtime

__all__ = [
    "ConfigError",
    "ContainerConfig",
    "ContainerFile",
    "ContainerError",
    "ContainerInfo",
    "ContainerNotFound",
    "ContainerStats",
    "ExecResult",
    "ImageInUse",
    "ImageLoadError",
    "ImageNotFound",
    "VolumeNotFound",
    "Runtime",
    "StartError",
]


def __getattr__(name: str) -> Any:
    if name == "Runtime":
        from shoal.runtime.client import Runtime

        return Runtime
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
