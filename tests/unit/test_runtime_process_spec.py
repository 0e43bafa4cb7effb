"""One process spec for PID 1 and exec: what the launcher derives from a container's state, and the
setup steps both kinds of process share (cgroup join, PATH lookup, failure reports)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shoal.runtime import ConfigError, ContainerConfig, ContainerError, seccomp
from shoal.runtime.launcher import procspec
from shoal.runtime.launcher.child import process
from shoal.runtime.launcher.child.process import ProcessSpec, SetupError
from shoal.runtime.launcher.resolve import Resolved
from shoal.runtime.launcher.state import ContainerState
from shoal.runtime.layout import Layout
from shoal.runtime.spec import validate


class FakeCgroups:
    """The one question procspec asks a cgroup manager."""

    def self_join_files(self, cid: str) -> list[str]:
        return [f"/cg/memory/{cid}/tasks", f"/cg/pids/{cid}/tasks"]


def running_state(**config: object) -> ContainerState:
    spec = validate(ContainerConfig(id="web.1", image="busybox", **config))  # type: ignore[arg-type]
    resolved = Resolved(
        argv=["httpd", "-f"],
        env=["PATH=/bin", "HOSTNAME=web.1", "MODE=prod", "HOME=/home/app"],
        workdir="/srv",
        uid=1000,
        gid=1000,
        groups=[50],
        home="/home/app",
        image_id="sha256:abc",
        lowerdirs=["/img/2", "/img/1"],
        api_dirs=True,
        mounts=[{"type": "tmpfs", "source": "", "target": "/t", "readonly": False, "tmpfs_size": 0}],
    )
    return ContainerState(id="web.1", spec=spec, resolved=resolved, status="running", pid=4242)


def test_pid1_gets_the_resolved_process_and_the_root_to_build(tmp_path: Path) -> None:
    st = running_state(cap_drop=["ALL"], init=True, hostname="web")
    layout = Layout(tmp_path)
    spec = procspec.pid1(st, layout, FakeCgroups(), ["/hide"], last_cap=40)  # type: ignore[arg-type]
    assert spec.process == ProcessSpec(
        args=["httpd", "-f"],
        env=["PATH=/bin", "HOSTNAME=web.1", "MODE=prod", "HOME=/home/app"],
        workdir="/srv",
        uid=1000,
        gid=1000,
        groups=(50,),
        caps=0,
        last_cap=40,
        cgroup_procs=["/cg/memory/web.1/tasks", "/cg/pids/web.1/tasks"],
        seccomp=seccomp.program_for("", 0),
    )
    assert len(spec.process.seccomp) > 100 * 8, "the default profile, compiled for no capabilities"
    assert (spec.hostname, spec.init, spec.userns, spec.api_dirs) == ("web", True, False, True)
    assert spec.rootfs == layout.rootfs("web.1") and spec.upper == layout.upper("web.1")
    assert spec.lowerdirs == ["/img/2", "/img/1"] and spec.hidden == ["/hide"]
    assert spec.mounts[0]["target"] == "/t"


def test_an_unconfined_container_gets_no_filter() -> None:
    st = running_state(seccomp="unconfined")
    assert procspec.pid1(st, Layout("/s"), FakeCgroups(), [], 40).process.seccomp == b""  # type: ignore[arg-type]


def test_the_spec_is_a_copy_of_the_state() -> None:
    st = running_state()
    spec = procspec.pid1(st, Layout("/s"), FakeCgroups(), [], 40)  # type: ignore[arg-type]
    spec.process.args.append("x")
    spec.lowerdirs.clear()
    assert st.resolved.argv == ["httpd", "-f"] and st.resolved.lowerdirs == ["/img/2", "/img/1"]


def test_exec_shares_identity_and_cwd_with_its_own_command_and_env() -> None:
    st = running_state()
    spec = procspec.exec_in(st, FakeCgroups(), 40, ["sh", "-c", "id"], ["MODE=debug", "X=1"], 5.0, True)  # type: ignore[arg-type]
    pid1 = procspec.process(st, FakeCgroups().self_join_files("web.1"), 40)
    assert spec.process.args == ["sh", "-c", "id"]
    assert spec.process.env == ["PATH=/bin", "HOSTNAME=web.1", "HOME=/home/app", "MODE=debug", "X=1"]
    same = ("workdir", "uid", "gid", "groups", "caps", "last_cap", "cgroup_procs")
    assert all(getattr(spec.process, f) == getattr(pid1, f) for f in same)
    assert (spec.target_pid, spec.timeout, spec.interactive) == (4242, 5.0, True)


@pytest.mark.parametrize(
    ("args", "timeout", "message"),
    [([], None, "exec needs a command"), ([""], None, "exec needs a command"), (["sh"], 0, "timeout must be > 0")],
)
def test_bad_exec_requests_are_refused(args: list[str], timeout: float | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        procspec.exec_in(running_state(), FakeCgroups(), 40, args, [], timeout, False)  # type: ignore[arg-type]


def test_exec_needs_a_running_container() -> None:
    st = running_state()
    st.status = "exited"
    with pytest.raises(ContainerError, match="container web.1 is not running"):
        procspec.exec_in(st, FakeCgroups(), 40, ["sh"], [], None, False)  # type: ignore[arg-type]


def _executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_find_executable_searches_path_in_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "tool").write_text("not executable")
    _executable(second / "tool")
    _executable(tmp_path / "b" / "other")
    assert process.find_executable("tool", f"{first}:{second}") == str(second / "tool")
    assert process.find_executable("./rel/tool", "") == "./rel/tool", "a path with a slash is taken as is"
    with pytest.raises(SetupError, match='exec: "missing": executable file not found in \\$PATH'):
        process.find_executable("missing", f"{first}:{second}")


def test_executable_uses_the_specs_path(tmp_path: Path) -> None:
    _executable(tmp_path / "srv")
    spec = ProcessSpec(["srv", "-x"], [f"PATH={tmp_path}", "A=b=c"], "/", 0, 0, (), 0, 40)
    path, env = process.executable(spec)
    assert path == str(tmp_path / "srv") and env == {"PATH": str(tmp_path), "A": "b=c"}


def test_env_dict_keeps_the_last_value_of_a_key() -> None:
    assert process.env_dict(["A=1", "B=", "A=2", "C"]) == {"A": "2", "B": "", "C": ""}


def test_failures_are_described_for_the_user() -> None:
    assert process.describe("chdir", SetupError("exact words")) == "exact words"
    err = FileNotFoundError(2, "No such file or directory", "/srv")
    assert process.describe("chdir", err) == "chdir: No such file or directory: /srv"
    assert process.describe("rootfs", OSError(1, "mount /x: Operation not permitted", "/x")) == (
        "rootfs: mount /x: Operation not permitted"
    )
    assert process.describe("exec", ValueError("bad")) == "exec: ValueError: bad"


def test_report_writes_one_bounded_line_to_the_pipe() -> None:
    r, w = os.pipe()
    try:
        process.report(w, "exec", SetupError("x" * 10_000))
        os.close(w)
        assert os.read(r, 20_000) == b"x" * 4000
    finally:
        os.close(r)


def test_join_cgroup_writes_zero_to_each_file(tmp_path: Path) -> None:
    files = [tmp_path / "memory.tasks", tmp_path / "pids.tasks"]
    for f in files:
        f.write_text("")
    process.join_cgroup([str(f) for f in files])
    assert [f.read_text() for f in files] == ["0", "0"]
    with pytest.raises(FileNotFoundError):
        process.join_cgroup([str(tmp_path / "gone" / "tasks")])


def test_last_cap_is_the_kernels() -> None:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        assert process.last_cap() == int(f.read())


def test_the_launcher_looks_up_a_containers_join_files_once_while_it_runs() -> None:
    from shoal.runtime.launcher.supervisor import JoinFiles

    class Counting(FakeCgroups):
        calls = 0

        def self_join_files(self, cid: str) -> list[str]:
            self.calls += 1
            return super().self_join_files(cid)

    cg = Counting()
    joins = JoinFiles(cg)  # type: ignore[arg-type]
    first = joins.self_join_files("web.1")
    first.append("changed by a caller")  # each exec gets its own list
    assert joins.self_join_files("web.1") == ["/cg/memory/web.1/tasks", "/cg/pids/web.1/tasks"] and cg.calls == 1
    spec = procspec.exec_in(running_state(), joins, 40, ["true"], [], None, False)
    assert spec.process.cgroup_procs == ["/cg/memory/web.1/tasks", "/cg/pids/web.1/tasks"] and cg.calls == 1
    joins.forget("web.1")  # the container ended: a new run may have new directories
    joins.self_join_files("web.1")
    assert cg.calls == 2
