"""The launcher's container table: create, start (fork into new namespaces), reap, kill, delete.

Runs only inside the single-threaded launcher process, which is the sole writer of the state files.
``start`` is where the one fork per container happens (findings §2): ``unshare(CLONE_NEWPID)``,
``fork()``, and ``setns`` straight back to the launcher's own pid namespace, so only that child is
PID 1 of a new namespace. The child reports over a close-on-exec pipe; EOF means it exec'd. Each
running container is watched through a pidfd, so exits arrive in the launcher's select loop
without SIGCHLD handlers. Every step undoes the earlier ones when it fails.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from shoal.runtime import caps, child, execproc, jsonlog, linux, logs, prepare, procutil, state, trace, userns
from shoal.runtime.cgroup_limits import Limits
from shoal.runtime.cgroups import Cgroups
from shoal.runtime.config import (
    STATUS_CREATED,
    STATUS_EXITED,
    STATUS_RUNNING,
    ContainerConfig,
    ContainerInfo,
    effective_env,
    effective_hostname,
    validate,
)
from shoal.runtime.errors import ConfigError, ContainerError, ContainerNotFound, StartError
from shoal.runtime.imagestore import ImageStore
from shoal.runtime.rootfs import api_dirs_in_layers
from shoal.runtime.volumes import VolumeStore

START_TIMEOUT_S = 30.0
_log = jsonlog.get(__name__)


class Supervisor:
    """All containers of one state directory, as seen by the launcher."""

    def __init__(
        self,
        layout: state.Layout,
        cgroups: Cgroups,
        watch: Callable[[int, str], None],
        unwatch: Callable[[int], None],
        image_root: str | None = None,
    ) -> None:
        self.layout = layout
        self.images = ImageStore(image_root or layout.default_images)
        self.volumes = VolumeStore(layout.volumes)
        self.cgroups = cgroups
        self.states: dict[str, state.ContainerState] = {}
        self.pidfds: dict[str, int] = {}
        self.shims: dict[str, int] = {}
        self._watch, self._unwatch = watch, unwatch
        self._own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        self._last_cap = caps.last_cap()

    # -- loading and re-attaching -------------------------------------------------------------

    def load(self) -> None:
        """Read the state dir; remove half-created containers; re-watch or settle running ones."""
        states, orphans = state.load_all(self.layout)
        for cid in orphans:
            _log.warning("removing container dir without state", container=cid)
            self._remove_dirs(cid)
            try:
                self.cgroups.delete(cid)
            except ContainerError as exc:
                _log.warning("orphan cgroup not removed", container=cid, error=str(exc))
        self.states = states
        for cid, st in states.items():
            if st.status != STATUS_RUNNING:
                continue
            alive = st.pid_start_time and state.proc_start_time(st.pid) == st.pid_start_time
            fd = procutil.pidfd(st.pid) if alive else None
            if fd is None:
                self._record_exit(st, None)
            else:
                self._track(cid, fd)
                _log.info("re-attached running container", container=cid, pid=st.pid)

    # -- operations ---------------------------------------------------------------------------

    def get(self, cid: str) -> state.ContainerState:
        st = self.states.get(cid)
        if st is None:
            raise ContainerNotFound(f"no such container: {cid}")
        return st

    def running_count(self) -> int:
        return sum(1 for s in self.states.values() if s.status == STATUS_RUNNING)

    def create(self, data: dict) -> ContainerInfo:
        cfg = ContainerConfig.from_dict(data)
        validate(cfg)
        cid = cfg.id
        if cid in self.states or os.path.lexists(self.layout.container_dir(cid)):
            raise ConfigError(f"container {cid} already exists")
        ncpu = os.cpu_count() or 1
        if cfg.nano_cpus > ncpu * 1_000_000_000:
            raise ConfigError(
                f"range of CPUs is from 0.01 to {ncpu:.2f}, as there are only {ncpu} CPUs available"
            )
        trace.mark("validate")
        res = prepare.resolve(cfg, self.images, self.volumes)
        ident = res.identity
        trace.mark("resolve")
        if self.cgroups.exists(cid):  # left by a crash between mkdir and the state write
            self.cgroups.delete(cid)
        os.mkdir(self.layout.container_dir(cid), 0o700)
        try:
            os.mkdir(self.layout.rootfs(cid), 0o755)
            if res.lowerdirs:
                os.mkdir(self.layout.upper(cid), 0o755)
                os.mkdir(self.layout.work(cid), 0o700)
            log_path = self.layout.log_path(cid)
            os.close(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o640))
            trace.mark("dirs")
            limits = Limits(cfg.memory_bytes, cfg.pids_limit, cfg.nano_cpus, cfg.cpu_shares, cfg.blkio_weight)
            self.cgroups.create(cid, limits)
            trace.mark("cgroup")
            st = state.ContainerState(
                id=cid,
                config=cfg.to_dict(),
                created_at=time.time(),
                cgroup=self.cgroups.relpath(cid),
                cgroup_dirs=[d for d in self.cgroups.dirs(cid) if os.path.isdir(d)],
                log_path=log_path,
                uid=ident.uid,
                gid=ident.gid,
                groups=list(ident.groups),
                home=ident.home,
                argv=res.argv,
                env=res.env,
                workdir=res.workdir,
                image_id=res.image_id,
                lowerdirs=res.lowerdirs,
                mounts=res.mounts,
                caps=res.caps,
            )
            try:
                state.save(self.layout, st)
            except BaseException:
                self.cgroups.delete(cid)
                raise
            trace.mark("save")
        except BaseException:
            self._remove_dirs(cid)
            raise
        self.states[cid] = st
        _log.info("created", container=cid)
        return st.info()

    def start(self, cid: str) -> ContainerInfo:
        st = self.get(cid)
        if st.status != STATUS_CREATED:
            raise StartError(f"container {cid} is {st.status}; only a created container can be started")
        spec = self._child_spec(st)
        trace.mark("spec")
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        try:
            exec_r, exec_w = os.pipe2(os.O_CLOEXEC)
            try:
                if spec.userns:
                    pid = userns.fork_container(spec, exec_w, out_w, err_w, START_TIMEOUT_S)
                else:
                    pid = self._fork_in_new_pidns(spec, exec_r, exec_w, out_w, err_w)
            except BaseException:
                os.close(exec_r)
                raise
            finally:
                os.close(exec_w)
                os.close(out_w)
                os.close(err_w)
            trace.mark("fork")
            # While PID 1 sets itself up (a few ms, on another CPU), do the launcher's share of the
            # start: the log shim (it must not inherit exec_w or the write ends: closed above),
            # and the state file naming the pid, so a launcher crash from here on can re-attach.
            if pid > 0:
                try:
                    self._start_shim(cid, out_r, err_r, st.log_path)
                    st.status, st.pid, st.started_at = STATUS_RUNNING, pid, time.time()
                    st.pid_start_time = state.proc_start_time(pid)
                    state.save(self.layout, st)
                except BaseException:
                    os.close(exec_r)
                    procutil.reap_failed(pid)
                    self.cgroups.kill_all(cid)
                    self._wait_shim(cid)
                    st.status, st.pid, st.started_at, st.pid_start_time = STATUS_CREATED, 0, None, 0
                    raise
                trace.mark("shim_save")
            try:
                message = procutil.read_until_eof(exec_r, START_TIMEOUT_S)
            finally:
                os.close(exec_r)
            trace.mark("exec_wait")
            fd = None
            if not message and message is not None and pid > 0:
                fd = procutil.pidfd(pid)
            if fd is None:
                if pid > 0:
                    procutil.reap_failed(pid)
                if self.cgroups.populated(cid):
                    self.cgroups.kill_all(cid)
                self._wait_shim(cid)
                if message:
                    reason = message.decode("utf-8", "replace")
                elif message is None:
                    reason = f"timed out after {START_TIMEOUT_S}s"
                elif pid > 0:
                    reason = "the container's process vanished before it could be watched"
                else:
                    reason = "the user namespace shim failed before starting the container"
                if st.status == STATUS_RUNNING:
                    st.status, st.pid, st.started_at, st.pid_start_time = STATUS_CREATED, 0, None, 0
                    state.save(self.layout, st)
                _log.info("start failed", container=cid, reason=reason)
                raise StartError(reason)
        finally:
            os.close(out_r)
            os.close(err_r)
        self._track(cid, fd)  # from here on, an exit is reaped and recorded by the loop
        trace.mark("track")
        _log.info("started", container=cid, pid=pid)
        return st.info()

    def _child_spec(self, st: state.ContainerState) -> child.ChildSpec:
        cfg = st.container_config
        return child.ChildSpec(
            args=list(st.argv or cfg.args),
            env=effective_env(cfg, st.home, st.env if st.argv else None),
            workdir=st.workdir if st.argv else (cfg.workdir or "/"),
            uid=st.uid,
            gid=st.gid,
            groups=tuple(st.groups),
            hostname=effective_hostname(cfg),
            rootfs=self.layout.rootfs(st.id),
            hidden=[self.layout.root, self.images.root],
            cgroup_procs=self.cgroups.self_join_files(st.id),
            caps=st.caps if st.argv else caps.DOCKER_DEFAULT_MASK,
            last_cap=self._last_cap,
            lowerdirs=list(st.lowerdirs),
            api_dirs=bool(st.lowerdirs) and api_dirs_in_layers(st.lowerdirs),
            upper=self.layout.upper(st.id),
            work=self.layout.work(st.id),
            mounts=list(st.mounts),
            init=cfg.init,
            userns=cfg.userns,
        )

    def exec_spec(
        self, cid: str, args: list[str], env: list[str], timeout: float | None, interactive: bool
    ) -> execproc.ExecSpec:
        """How to run ``args`` inside running container ``cid`` (its identity, env and cwd)."""
        st = self.get(cid)
        if st.status != STATUS_RUNNING or cid not in self.pidfds:
            raise ContainerError(f"container {cid} is not running")
        if not args or not all(isinstance(a, str) and a for a in args[:1]):
            raise ConfigError("exec needs a command")
        if timeout is not None and not timeout > 0:
            raise ConfigError(f"exec timeout must be > 0, got {timeout!r}")
        base = self._child_spec(st)
        keys = {e.partition("=")[0] for e in env}
        full_env = [e for e in base.env if e.partition("=")[0] not in keys] + list(env)
        return execproc.ExecSpec(
            target_pid=st.pid,
            args=list(args),
            env=full_env,
            workdir=base.workdir,
            uid=base.uid,
            gid=base.gid,
            groups=base.groups,
            caps=base.caps,
            last_cap=base.last_cap,
            cgroup_procs=base.cgroup_procs,
            timeout=timeout,
            interactive=interactive,
        )

    def _start_shim(self, cid: str, out_r: int, err_r: int, path: str) -> None:
        self.shims[cid] = logs.start_shim(out_r, err_r, path)

    def _wait_shim(self, cid: str) -> None:
        pid = self.shims.pop(cid, None)
        if pid is not None:
            logs.wait_shim(pid)

    def _fork_in_new_pidns(
        self, spec: child.ChildSpec, exec_r: int, exec_w: int, out_w: int, err_w: int
    ) -> int:
        linux.unshare(linux.CLONE_NEWPID)
        try:
            pid = os.fork()
        except BaseException:
            linux.setns(self._own_pidns, linux.CLONE_NEWPID)
            raise
        if pid == 0:  # the container's PID 1
            trace.begin("child", os.dup(2) if trace.ENABLED else 2)
            os.close(exec_r)
            child.run(spec, exec_w, out_w, err_w)
        linux.setns(self._own_pidns, linux.CLONE_NEWPID)
        return pid

    def kill(self, cid: str, sig: int, whole_cgroup: bool = False) -> None:
        st = self.get(cid)
        fd = self.pidfds.get(cid)
        if st.status != STATUS_RUNNING or fd is None:
            raise ContainerError(f"container {cid} is not running")
        if whole_cgroup and sig == signal.SIGKILL:
            self.cgroups.kill_all(cid)
        elif whole_cgroup:
            for pid in self.cgroups.pids(cid):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        try:
            signal.pidfd_send_signal(fd, sig)
        except ProcessLookupError:
            pass

    def on_exit(self, cid: str) -> state.ContainerState:
        """Called when the container's pidfd turns readable: reap and persist the exit."""
        st = self.get(cid)
        fd = self.pidfds.pop(cid)
        self._unwatch(fd)
        os.close(fd)
        code: int | None = None
        try:
            _, status = os.waitpid(st.pid, 0)
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code
        except ChildProcessError:  # re-attached after a launcher restart: not our child
            pass
        trace.mark("reap")
        if self.cgroups.populated(cid):
            self.cgroups.kill_all(cid)
        trace.mark("cgroup_pids")
        self._wait_shim(cid)
        trace.mark("wait_shim")
        self._record_exit(st, code)
        trace.mark("record")
        return st

    def _record_exit(self, st: state.ContainerState, code: int | None) -> None:
        st.status, st.exit_code, st.finished_at = STATUS_EXITED, code, time.time()
        try:
            st.oom_killed = self.cgroups.oom_kills(st.id) > 0
        except OSError:
            st.oom_killed = False
        state.save(self.layout, st)
        _log.info("exited", container=st.id, exit_code=code, oom_killed=st.oom_killed)

    def delete(self, cid: str) -> None:
        st = self.get(cid)
        if st.status == STATUS_RUNNING:
            raise ContainerError(f"cannot delete running container {cid}: stop it first or use force")
        self.cgroups.delete(cid)
        trace.mark("cgroup")
        procutil.unmount_below(self.layout.container_dir(cid))
        trace.mark("unmount")
        self._remove_dirs(cid)
        trace.mark("rmdirs")
        del self.states[cid]
        _log.info("deleted", container=cid)

    def _remove_dirs(self, cid: str) -> None:
        state.remove_container_dir(self.layout, cid)

    def _track(self, cid: str, fd: int) -> None:
        self.pidfds[cid] = fd
        self._watch(fd, cid)
