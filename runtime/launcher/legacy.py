"""Reading a container state file written before the validated spec (format 1: ``config`` plus flat fields).

A launcher restarted on a newer shoal re-attaches to the containers the older one started; their
state files hold the caller's raw ContainerConfig and the create-time results side by side. This
turns such a file into the current shape (``spec`` and ``resolved``) once, when it is read, so the
rest of the launcher knows one format. The old config was validated when it was created, so it is
converted, not checked again.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from shoal.runtime import caps, mounts
from shoal.runtime.cgroup.limits import Limits
from shoal.runtime.spec import effective_env

SPEC_KEYS = ("id", "image", "args", "entrypoint", "env", "workdir", "user", "init", "userns", "stop_grace_s")
SPEC_KEYS += ("labels",)
LIFE_KEYS = (
    "id", "status", "pid", "pid_start_time", "exit_code", "oom_killed", "created_at", "started_at",
    "finished_at", "cgroup", "cgroup_dirs", "log_path",
)  # fmt: skip


def convert(data: dict[str, Any]) -> dict[str, Any]:
    """A format-1 state document as a format-2 one (``spec`` and ``resolved`` as plain dicts)."""
    config = dict(data.get("config") or {})
    config.setdefault("id", data.get("id", ""))
    hostname = config.get("hostname") or str(config["id"])[:12]
    spec = {key: config[key] for key in SPEC_KEYS if key in config}
    spec.update(
        hostname=hostname,
        limits=dataclasses.asdict(
            Limits(
                int(config.get("memory_bytes", 0)),
                int(config.get("pids_limit", 0)),
                int(config.get("nano_cpus", 0)),
                int(config.get("cpu_shares", 0)),
                int(config.get("blkio_weight", 0)),
            )
        ),
        caps=int(data.get("caps", 0)) if data.get("argv") else caps.DOCKER_DEFAULT_MASK,
        mounts=mounts.validate_all(list(config.get("mounts") or [])),
    )
    home = str(data.get("home", "/root"))
    argv = list(data.get("argv") or config.get("args") or [])
    env = list(data["env"]) if data.get("argv") else list(config.get("env") or [])
    workdir = str(data.get("workdir") or "/") if data.get("argv") else (config.get("workdir") or "/")
    resolved = {
        "argv": argv,
        "env": effective_env(env, hostname, home),
        "workdir": workdir,
        "uid": int(data.get("uid", 0)),
        "gid": int(data.get("gid", 0)),
        "groups": list(data.get("groups") or []),
        "home": home,
        "image_id": str(data.get("image_id", "")),
        "lowerdirs": list(data.get("lowerdirs") or []),
        "api_dirs": False,
        "mounts": list(data.get("mounts") or []),
    }
    life = {key: data[key] for key in LIFE_KEYS if key in data}
    return {**life, "spec": spec, "resolved": resolved}
