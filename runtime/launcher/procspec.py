"""What the launcher hands to the processes it forks, derived from a container's persisted state.

The container's PID 1 gets a ChildSpec and each ``exec`` an ExecSpec; both carry the same
ProcessSpec (argv, env, cwd, identity, capabilities, cgroup), built here from the validated spec and
what it resolved to at create. Nothing is looked up or validated again: this is plain data
plumbing, so it runs before every fork at the cost of a few attribute reads.
"""

from __future__ import annotations

import dataclasses
import resource
from typing import Any, Protocol

from shoal.runtime import seccomp
from shoal.runtime.cgroup import Cgroups
from shoal.runtime.config import STATUS_RUNNING
from shoal.runtime.errors import ConfigError, ContainerError
from shoal.runtime.launcher import hostnet
from shoal.runtime.launcher.child.exec import ExecSpec
from shoal.runtime.launcher.child.pid1 import ChildSpec
from shoal.runtime.launcher.child.process import ProcessSpec
from shoal.runtime.launcher.state import ContainerState
from shoal.runtime.layout import Layout

RLIMIT_NUMBERS = {
    "cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6, "nofile": 7, "memlock": 8,
    "locks": 10, "sigpending": 11, "msgqueue": 12, "nice": 13, "rtprio": 14, "rttime": 15,
}
"""Linux's RLIMIT_* numbers for docker's ulimit names (Python's resource module lacks some)."""


def process(st: ContainerState, cgroup_procs: list[str], last_cap: int) -> ProcessSpec:
    """The container's own process: its command, environment, working directory and identity."""
    res = st.resolved
    return ProcessSpec(
        args=list(res.argv),
        env=list(res.env),
        workdir=res.workdir,
        uid=res.uid,
        gid=res.gid,
        groups=tuple(res.groups),
        caps=st.spec.caps,
        last_cap=last_cap,
        cgroup_procs=cgroup_procs,
        seccomp=seccomp.program_for(st.spec.seccomp, st.spec.caps),  # compiled once per launcher
        rlimits=rlimits(st.spec.ulimits),
    )


def rlimits(ulimits: list[list[Any]]) -> tuple[tuple[int, int, int], ...]:
    """docker's ulimit names as setrlimit arguments (-1 is RLIM_INFINITY)."""
    def value(v: int) -> int:
        return resource.RLIM_INFINITY if v < 0 else int(v)

    return tuple((RLIMIT_NUMBERS[name], value(soft), value(hard)) for name, soft, hard in ulimits)


def pid1(st: ContainerState, layout: Layout, cgroups: Cgroups, hidden: list[str], last_cap: int) -> ChildSpec:
    """How the container's PID 1 sets itself up (``hidden``: host dirs a host-image root must not show)."""
    return ChildSpec(
        process=process(st, cgroups.self_join_files(st.id), last_cap),
        hostname=st.spec.hostname,
        rootfs=layout.rootfs(st.id),
        hidden=hidden,
        lowerdirs=list(st.resolved.lowerdirs),
        api_dirs=st.resolved.api_dirs,
        upper=layout.upper(st.id),
        work=layout.work(st.id),
        mounts=list(st.resolved.mounts),
        init=st.spec.init,
        userns=st.spec.userns,
        netns_path=st.spec.netns_path or (f"{hostnet.NETNS_DIR}/{hostnet.netns_name(st.id)}" if st.net_address else ""),
        masked=list(st.spec.masked_paths),
        read_only=st.spec.read_only,
        sysctls=dict(st.spec.sysctls),
    )


class JoinFileSource(Protocol):
    """Where an exec finds the cgroup files it joins (the launcher's per-container cache)."""

    def self_join_files(self, cid: str) -> list[str]: ...


def exec_in(
    st: ContainerState,
    cgroups: JoinFileSource,
    last_cap: int,
    args: list[str],
    env: list[str],
    timeout: float | None,
    interactive: bool,
) -> ExecSpec:
    """How to run ``args`` in running container ``st``: its identity and cwd, its env with ``env`` over it."""
    if st.status != STATUS_RUNNING:
        raise ContainerError(f"container {st.id} is not running")
    if not args or not all(isinstance(a, str) and a for a in args[:1]):
        raise ConfigError("exec needs a command")
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"exec timeout must be > 0, got {timeout!r}")
    base = process(st, cgroups.self_join_files(st.id), last_cap)
    keys = {e.partition("=")[0] for e in env}
    full_env = [e for e in base.env if e.partition("=")[0] not in keys] + list(env)
    proc = dataclasses.replace(base, args=list(args), env=full_env)
    return ExecSpec(process=proc, target_pid=st.pid, timeout=timeout, interactive=interactive)
