"""The runtime's exceptions, shared by the launcher process and the agent-side client.

They cross the launcher's unix socket by name (``to_wire``/``from_wire``), so the agent sees the
same exception type and message the launcher raised.
"""

from __future__ import annotations


class ContainerError(Exception):
    """Base class of every error the runtime reports about a container or its configuration."""


class ImageNotFound(ContainerError):
    """The image named in the config is not known to this runtime."""


class ContainerNotFound(ContainerError):
    """No container with that id exists in this runtime's state directory."""


class StartError(ContainerError):
    """The container could not be started; the message carries the reason (e.g. the exec error)."""


class ConfigError(ContainerError):
    """The container config is invalid (bad id, unknown user, conflicting name, ...)."""


class ImageLoadError(ContainerError):
    """An image archive is malformed, truncated, or a digest does not match."""


class ImageInUse(ContainerError):
    """The image cannot be removed: a container uses it."""


class VolumeNotFound(ContainerError):
    """No volume of that name on this node."""


_BY_NAME: dict[str, type[ContainerError]] = {
    cls.__name__: cls
    for cls in (
        ContainerError,
        ImageNotFound,
        ContainerNotFound,
        StartError,
        ConfigError,
        ImageLoadError,
        ImageInUse,
        VolumeNotFound,
    )
}


def to_wire(exc: BaseException) -> dict[str, str]:
    """The JSON shape of an exception; anything unexpected becomes a plain ContainerError."""
    name = type(exc).__name__ if isinstance(exc, ContainerError) else "ContainerError"
    message = str(exc) if isinstance(exc, ContainerError) else f"{type(exc).__name__}: {exc}"
    return {"type": name, "message": message}


def from_wire(data: dict[str, str]) -> ContainerError:
    """Rebuild the exception the launcher reported."""
    cls = _BY_NAME.get(data.get("type", ""), ContainerError)
    return cls(data.get("message", "unknown error"))
