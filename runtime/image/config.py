"""How an image's config combines with a container's settings (docker's precedence rules).

Plain functions on plain data so they are unit tested without root: a command given to the
container replaces the image's Cmd; an entrypoint override replaces the image's Entrypoint *and*
drops its Cmd; Env entries of the container override the image's by key; WorkingDir and User apply
unless the container sets its own.
"""

from __future__ import annotations

from shoal.runtime.errors import ConfigError


def argv(
    entrypoint_override: list[str] | None,
    args: list[str],
    image_entrypoint: list[str] | None,
    image_cmd: list[str] | None,
) -> list[str]:
    """The process' argv from the container's settings and the image's (docker's precedence)."""
    if entrypoint_override is not None:
        entry = [a for a in entrypoint_override if a] if entrypoint_override != [""] else []
        cmd = list(args)
    else:
        entry = list(image_entrypoint or [])
        cmd = list(args) if args else list(image_cmd or [])
    result = entry + cmd
    if not result or not result[0]:
        raise ConfigError("no command specified: the image has no Entrypoint or Cmd; give a command")
    return result


def merge_env(image_env: list[str] | None, env: list[str]) -> list[str]:
    """The image's Env with the container's entries overriding by key (order kept)."""
    mine = {e.partition("=")[0]: e for e in env}
    merged = [e for e in image_env or [] if e.partition("=")[0] not in mine]
    return merged + list(env)


def workdir(container_workdir: str, image_workdir: str | None) -> str:
    wd = container_workdir or image_workdir or "/"
    if not wd.startswith("/"):
        wd = "/" + wd  # docker treats a relative WorkingDir in an image as relative to /
    return wd


def user(container_user: str, image_user: str | None) -> str:
    return container_user or image_user or ""


def exposed_ports(config: dict) -> list[str]:
    return sorted((config.get("ExposedPorts") or {}).keys())
