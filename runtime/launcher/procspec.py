"""What the launcher hands to the processes it forks, derived from a container's persisted state.

The container's PID 1 gets a ChildSpec and each ``exec`` an ExecSpec; both carry the same
ProcessSpec (argv, env, cwd, identity, capabilities, cgroup), built here from the validated spec and
what it resolved to at create. Nothing is looked up or validated again: this is plain data
plumbing, so it runs before every fork at the cost of a few attribute reads.
"""

from __future__ import annotations

import dataclasses

from shoal.runtime import seccomp
from shoal.runtime.cgroup import Cgroups
from shoal.runtime.config import STATUS_RUNNING
from shoal.runtime.errors import ConfigError, ContainerError
from shoal.runtime.launcher.child.exec import ExecSpec
from shoal.runtime.launcher.child.pid1 import ChildSpec
from shoal.runtime.launcher.child.process import ProcessSpec
from shoal.runtime.launcher.state import ContainerState
from shoal.runtime.layout import Layout


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
    )


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
        netns_path=st.spec.netns_path,
        masked=list(st.spec.masked_paths),
    )


def exec_in(
    st: ContainerState,
    cgroups: Cgroups,
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
