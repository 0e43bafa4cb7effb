"""The launcher's container table: create, reap, kill, delete, and re-attaching after a restart.

Runs only inside the single-threaded launcher process, which is the sole writer of the state files.
``create`` resolves the client's validated spec against the image store once and persists both;
``start`` (the one fork per container) is in start.py. Each running container is watched through a
pidfd, so exits arrive in the launcher's select loop without SIGCHLD handlers. Every step undoes
the earlier ones when it fails.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from shoal.runtime import seccomp
from shoal.runtime.cgroup import Cgroups
from shoal.runtime.config import STATUS_CREATED, STATUS_EXITED, STATUS_RUNNING, ContainerInfo
from shoal.runtime.errors import ConfigError, ContainerError, ContainerNotFound
from shoal.runtime.files import ContainerFile
from shoal.runtime.image.store import ImageStore
from shoal.runtime.launcher import hostnet, jsonlog, procspec, procutil, start, state, trace
from shoal.runtime.launcher.child.exec import ExecSpec
from shoal.runtime.launcher.child.pid1 import ChildSpec
from shoal.runtime.launcher.child.process import last_cap
from shoal.runtime.launcher.logsink import LogSink
from shoal.runtime.launcher.resolve import resolve
from shoal.runtime.launcher.volumes import VolumeStore
from shoal.runtime.layout import Layout
from shoal.runtime.spec import ContainerSpec

_log = jsonlog.get(__name__)
NAME_LABEL = "shoal.name"  # the name ``shoal run --name`` gives (shown when a port is already held)


class JoinFiles:
    """The cgroup files an exec'd process joins, per running container, looked up once: each look-up
    stats every hierarchy's directory (a dozen on cgroup v1), and a node probes each container's health
    every second. A container's directories stay while it runs; ``forget`` drops them when it ends."""

    def __init__(self, cgroups: Cgroups) -> None:
        self.cgroups = cgroups
        self._files: dict[str, list[str]] = {}

    def self_join_files(self, cid: str) -> list[str]:
        files = self._files.get(cid)
        if files is None:
            files = self._files[cid] = self.cgroups.self_join_files(cid)
        return list(files)

    def forget(self, cid: str) -> None:
        self._files.pop(cid, None)


class Supervisor:
    """All containers of one state directory, as seen by the launcher."""

    def __init__(
        self,
        layout: Layout,
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
        self.joins = JoinFiles(cgroups)
        self.logs = LogSink()  # the log daemon writing every container's output (logshim.py)
        self._watch, self._unwatch = watch, unwatch
        self.own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        self.last_cap = last_cap()
        self.hostnet = hostnet.HostNet(layout.root)

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
                self.record_exit(st, None)
            else:
                self.track(cid, fd)
                _log.info("re-attached running container", container=cid, pid=st.pid)
        for st in list(states.values()):
            if st.net_address and st.status != STATUS_RUNNING:  # exited while no launcher watched it
                self._unpublish(st)
                state.save(self.layout, st)
        if any(st.net_address for st in states.values()):
            self._sync_ports()

    # -- operations ---------------------------------------------------------------------------

    def get(self, cid: str) -> state.ContainerState:
        st = self.states.get(cid)
        if st is None:
            raise ContainerNotFound(f"no such container: {cid}")
        return st

    def running_count(self) -> int:
        return sum(1 for s in self.states.values() if s.status == STATUS_RUNNING)

    def create(self, spec: ContainerSpec) -> ContainerInfo:
        """Resolve ``spec`` (validated by the client) against its image; make its dirs, cgroup, state."""
        cid = spec.id
        if cid in self.states or os.path.lexists(self.layout.container_dir(cid)):
            raise ConfigError(f"container {cid} already exists")
        res = resolve(spec, self.images, self.volumes)
        seccomp.program_for(spec.seccomp, spec.caps)  # a profile libseccomp refuses fails the create
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
            self.cgroups.create(cid, spec.limits)
            trace.mark("cgroup")
            st = state.ContainerState(
                id=cid,
                spec=spec,
                resolved=res,
                created_at=time.time(),
                cgroup=self.cgroups.relpath(cid),
                cgroup_dirs=[d for d in self.cgroups.dirs(cid) if os.path.isdir(d)],
                log_path=log_path,
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

    def start(self, cid: str, files: list[ContainerFile] | None = None) -> ContainerInfo:
        """Run a created container; returns once its command has been exec'd (see start.py).

        A container that publishes ports is wired first (hostnet.py); a failed start unwires it."""
        st = self.get(cid)
        if st.spec.publish and st.status == STATUS_CREATED:
            self._publish(st)
        try:
            return start.start(self, cid, files)
        except BaseException:
            if st.net_address and st.status != STATUS_RUNNING:
                self._unpublish(st)
                state.save(self.layout, st)
            raise

    # -- published ports (hostnet.py) ----------------------------------------------------------

    def _publishers(self, but: str = "") -> list[state.ContainerState]:
        return [s for s in self.states.values() if s.net_address and s.id != but]

    def _sync_ports(self) -> None:
        self.hostnet.sync([(s.net_address, s.spec.publish) for s in self._publishers()])

    def _publish(self, st: state.ContainerState) -> None:
        others = self._publishers(st.id)
        self.hostnet.check(st.spec.publish, [(s.spec.labels.get(NAME_LABEL, s.id[:12]), s.spec.publish) for s in others])
        st.net_address = hostnet.next_address(s.net_address for s in others)
        state.save(self.layout, st)  # a launcher that dies from here on finds it and unwires it
        try:
            self.hostnet.attach(st.id, st.net_address)
            self._sync_ports()
        except BaseException:
            self._unpublish(st)
            state.save(self.layout, st)
            raise
        _log.info("published ports", container=st.id, address=st.net_address, ports=len(st.spec.publish))

    def _unpublish(self, st: state.ContainerState) -> None:
        """Take the container's forwards and namespace away (never raises: an exit must be recorded)."""
        st.net_address = ""
        try:
            self.hostnet.detach(st.id)
            self._sync_ports()
        except Exception as exc:  # noqa: BLE001 - logged; the next change rewrites the table whole
            _log.warning("published ports not fully removed", container=st.id, error=str(exc))

    def child_spec(self, st: state.ContainerState) -> ChildSpec:
        return procspec.pid1(
            st, self.layout, self.cgroups, [self.layout.root, self.images.root], self.last_cap
        )

    def exec_spec(
        self, cid: str, args: list[str], env: list[str], timeout: float | None, interactive: bool
    ) -> ExecSpec:
        """How to run ``args`` inside running container ``cid`` (its identity, env and cwd)."""
        st = self.get(cid)
        if cid not in self.pidfds:
            raise ContainerError(f"container {cid} is not running")
        return procspec.exec_in(st, self.joins, self.last_cap, args, env, timeout, interactive)

    def kill(self, cid: str, sig: int, whole_cgroup: bool = False) -> None:
        st = self.get(cid)
        fd = self.pidfds.get(cid)
        if st.status != STATUS_RUNNING or fd is None:
            raise ContainerError(f"container {cid} is not running")
        if whole_cgroup and sig == signal.SIGKILL:
            if st.spec.userns:
                self.cgroups.kill_all(cid)
            # else the kernel kills every other process of PID 1's own pid namespace with it (exec'd ones
            # joined it too), without freezing the cgroup: a freeze waited for each process to stop, up to
            # 0.1 s under load, while the launcher served nobody (the node's health probes queued behind
            # it); ``on_exit`` still kills what is left in the cgroup once PID 1 is reaped
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

    def reapable(self, cid: str) -> bool:
        """Whether the container's PID 1 can be reaped without waiting (or is not ours to reap)."""
        try:
            return os.waitid(os.P_PID, self.get(cid).pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def on_exit(self, cid: str) -> state.ContainerState:
        """Called when the container's pidfd turns readable: reap and persist the exit."""
        st = self.get(cid)
        fd = self.pidfds.pop(cid)
        self.joins.forget(cid)
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
        self.wait_shim(cid)
        trace.mark("wait_shim")
        self.record_exit(st, code)
        trace.mark("record")
        return st

    def record_exit(self, st: state.ContainerState, code: int | None) -> None:
        st.status, st.exit_code, st.finished_at = STATUS_EXITED, code, time.time()
        if st.net_address:
            self._unpublish(st)
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
        if st.net_address:
            self._unpublish(st)
        self.cgroups.delete(cid)
        trace.mark("cgroup")
        procutil.unmount_below(self.layout.container_dir(cid))
        trace.mark("unmount")
        self._remove_dirs(cid)
        trace.mark("rmdirs")
        del self.states[cid]
        _log.info("deleted", container=cid)

    # -- helpers shared with start.py -----------------------------------------------------------

    def start_shim(self, cid: str, out_r: int, err_r: int, path: str, max_size: int = 0, max_files: int = 0) -> None:
        """The log daemon takes the container's output pipes (the caller closes its own fds); the log
        rotates at ``max_size`` bytes keeping ``max_files`` files (0: the defaults)."""
        self.logs.add(cid, out_r, err_r, path, max_size, max_files)

    def wait_shim(self, cid: str) -> None:
        """Until the container's last lines are in its log (at most 2 s)."""
        self.logs.wait(cid)

    def track(self, cid: str, fd: int) -> None:
        self.pidfds[cid] = fd
        self._watch(fd, cid)

    def _remove_dirs(self, cid: str) -> None:
        state.remove_container_dir(self.layout, cid)
