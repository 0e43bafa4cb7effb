"""Starting a created container: the one fork per container, and undoing it when the start fails.

``start`` is where findings §2 happens: ``unshare(CLONE_NEWPID)``, ``fork()``, and ``setns``
straight back to the launcher's own pid namespace, so only that child is PID 1 of a new namespace
(a userns container goes through a shim instead: see child/userns.py). PID 1 reports over a
close-on-exec pipe; EOF means it exec'd. While PID 1 sets itself up, the launcher hands its output
pipes to the log daemon (logsink.py) and saves the state naming the pid, so a launcher crash from then
on can re-attach.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import TYPE_CHECKING

from shoal.runtime import linux
from shoal.runtime.config import STATUS_CREATED, STATUS_RUNNING, ContainerInfo
from shoal.runtime.errors import StartError
from shoal.runtime.files import ContainerFile
from shoal.runtime.launcher import jsonlog, procutil, state, trace
from shoal.runtime.launcher.child import pid1, userns

if TYPE_CHECKING:
    from shoal.runtime.launcher.supervisor import Supervisor

START_TIMEOUT_S = 30.0
_log = jsonlog.get(__name__)


def start(sup: Supervisor, cid: str, files: list[ContainerFile] | None = None) -> ContainerInfo:
    """Fork the container's PID 1; return once its command was exec'd, or raise StartError.

    ``files`` (secrets, configs) live in this process' memory only until the fork (see child/files).
    """
    st = sup.get(cid)
    if st.status != STATUS_CREATED:
        raise StartError(f"container {cid} is {st.status}; only a created container can be started")
    spec = sup.child_spec(st)
    if files:
        if spec.userns:
            raise StartError("files cannot be given to a container in a user namespace")
        staging = os.path.join(sup.layout.container_dir(cid), "files")
        os.makedirs(staging, 0o700, exist_ok=True)
        spec = dataclasses.replace(spec, files=list(files), files_staging=staging)
    trace.mark("spec")
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    try:
        pid, exec_r = _fork(sup, spec, out_w, err_w)
        trace.mark("fork")
        if pid > 0:
            _record_running(sup, st, pid, exec_r, out_r, err_r)
            trace.mark("shim_save")
        try:
            message = procutil.read_until_eof(exec_r, START_TIMEOUT_S)
        finally:
            os.close(exec_r)
        trace.mark("exec_wait")
        fd = procutil.pidfd(pid) if message == b"" and pid > 0 else None
        if fd is None:
            _fail(sup, st, pid, message)
    finally:
        os.close(out_r)
        os.close(err_r)
    sup.track(cid, fd)  # from here on, an exit is reaped and recorded by the loop
    trace.mark("track")
    _log.info("started", container=cid, pid=pid)
    return st.info()


def _fork(sup: Supervisor, spec: pid1.ChildSpec, out_w: int, err_w: int) -> tuple[int, int]:
    """Fork PID 1 (0 if a userns shim failed first); the read end of its exec pipe.

    The log pipes' write ends and the exec pipe's are closed here: a log daemon forked next must
    not hold them, or it would never see EOF (it also closes every fd it inherits first).
    """
    exec_r, exec_w = os.pipe2(os.O_CLOEXEC)
    try:
        if spec.userns:
            pid = userns.fork_container(spec, exec_w, out_w, err_w, START_TIMEOUT_S)
        else:
            pid = _fork_in_new_pidns(sup.own_pidns, spec, exec_r, exec_w, out_w, err_w)
    except BaseException:
        os.close(exec_r)
        raise
    finally:
        os.close(exec_w)
        os.close(out_w)
        os.close(err_w)
    return pid, exec_r


def _fork_in_new_pidns(
    own_pidns: int, spec: pid1.ChildSpec, exec_r: int, exec_w: int, out_w: int, err_w: int
) -> int:
    linux.unshare(linux.CLONE_NEWPID)
    try:
        pid = os.fork()
    except BaseException:
        linux.setns(own_pidns, linux.CLONE_NEWPID)
        raise
    if pid == 0:  # the container's PID 1
        trace.begin("child", os.dup(2) if trace.ENABLED else 2)
        os.close(exec_r)
        pid1.run(spec, exec_w, out_w, err_w)
    linux.setns(own_pidns, linux.CLONE_NEWPID)
    return pid


def _record_running(
    sup: Supervisor, st: state.ContainerState, pid: int, exec_r: int, out_r: int, err_r: int
) -> None:
    """Give the log daemon the output pipes and save the state naming ``pid``; on failure kill PID 1, undo."""
    try:
        sup.start_shim(st.id, out_r, err_r, st.log_path, st.spec.log_max_size, st.spec.log_max_files)
        st.status, st.pid, st.started_at = STATUS_RUNNING, pid, time.time()
        st.pid_start_time = state.proc_start_time(pid)
        state.save(sup.layout, st)
    except BaseException:
        os.close(exec_r)
        procutil.reap_failed(pid)
        sup.cgroups.kill_all(st.id)
        sup.wait_shim(st.id)
        _reset(st)
        raise


def _fail(sup: Supervisor, st: state.ContainerState, pid: int, message: bytes | None) -> None:
    """PID 1 did not exec (or vanished): clean up, put the container back to created, raise."""
    if pid > 0:
        procutil.reap_failed(pid)
    if sup.cgroups.populated(st.id):
        sup.cgroups.kill_all(st.id)
    sup.wait_shim(st.id)
    if message:
        reason = message.decode("utf-8", "replace")
    elif message is None:
        reason = f"timed out after {START_TIMEOUT_S}s"
    elif pid > 0:
        reason = "the container's process vanished before it could be watched"
    else:
        reason = "the user namespace shim failed before starting the container"
    if st.status == STATUS_RUNNING:
        _reset(st)
        state.save(sup.layout, st)
    _log.info("start failed", container=st.id, reason=reason)
    raise StartError(reason)


def _reset(st: state.ContainerState) -> None:
    st.status, st.pid, st.started_at, st.pid_start_time = STATUS_CREATED, 0, None, 0
