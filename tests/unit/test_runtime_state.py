"""The launcher's state files: format 2 round trips, format-1 files (before the validated spec) still
load, and the container dirs are found, listed and removed as the launcher expects after a crash."""

from __future__ import annotations

import json
import os
from pathlib import Path

from shoal.runtime import ContainerConfig, caps
from shoal.runtime.cgroup.limits import Limits
from shoal.runtime.launcher import state
from shoal.runtime.launcher.resolve import Resolved
from shoal.runtime.layout import Layout
from shoal.runtime.spec import DEFAULT_PATH, validate

FORMAT_1 = {
    "id": "web.1",
    "config": {
        "id": "web.1", "image": "busybox", "args": [], "entrypoint": None, "env": ["A=1"], "workdir": "",
        "user": "app", "hostname": "", "memory_bytes": 67108864, "pids_limit": 20, "nano_cpus": 0,
        "cpu_shares": 0, "blkio_weight": 0, "cap_add": [], "cap_drop": ["ALL"], "init": True,
        "userns": False, "mounts": [{"type": "volume", "source": "data", "target": "/data"}],
        "stop_grace_s": 2.5, "labels": {"service": "web"},
    },
    "status": "running", "pid": 4242, "pid_start_time": 99, "exit_code": None, "oom_killed": False,
    "created_at": 1.0, "started_at": 2.0, "finished_at": None, "cgroup": "shoal/web.1",
    "cgroup_dirs": ["/sys/fs/cgroup/memory/shoal/web.1"], "log_path": "/state/containers/web.1/ctr.log",
    "uid": 1000, "gid": 1000, "groups": [50], "home": "/home/app", "argv": ["sh"],
    "env": ["PATH=/bin", "A=1"], "workdir": "/", "image_id": "sha256:abc", "lowerdirs": ["/img/layers/1"],
    "mounts": [{"type": "volume", "source": "/state/volumes/data/_data", "target": "/data", "readonly": False,
                "tmpfs_size": 0, "volume": "data"}],
    "caps": 0,
}  # fmt: skip


def make_state(cid: str = "c1", **kw: object) -> state.ContainerState:
    spec = validate(ContainerConfig(id=cid, image="host", args=["true"], labels={"a": "b"}, memory_bytes=8 << 20))
    resolved = Resolved(["true"], [f"PATH={DEFAULT_PATH}"], "/", 0, 0, [], "/root", image_id="host")
    return state.ContainerState(id=cid, spec=spec, resolved=resolved, **kw)  # type: ignore[arg-type]


def test_state_round_trips_with_its_format() -> None:
    st = make_state(status="exited", exit_code=3, cgroup_dirs=["/x"], log_path="/l")
    data = json.loads(st.to_json())
    assert data["format"] == state.FORMAT
    assert data["spec"]["limits"]["memory_bytes"] == 8 << 20
    assert state.ContainerState.from_json(st.to_json()) == st


def test_info_reports_the_spec_and_what_it_resolved_to() -> None:
    info = make_state(status="running", pid=7).info()
    assert (info.image, info.image_id, info.command, info.labels, info.pid) == ("host", "host", ["true"], {"a": "b"}, 7)


def test_a_format_1_state_file_loads_as_the_same_container() -> None:
    st = state.ContainerState.from_json(json.dumps(FORMAT_1))
    assert (st.status, st.pid, st.pid_start_time, st.cgroup) == ("running", 4242, 99, "shoal/web.1")
    assert st.spec.hostname == "web.1" and st.spec.init and st.spec.stop_grace_s == 2.5
    assert st.spec.limits == Limits(memory_bytes=64 << 20, pids=20)
    assert st.spec.mounts[0]["source"] == "data", "the spec keeps the volume's name"
    assert st.resolved.mounts[0]["source"] == "/state/volumes/data/_data"
    assert st.resolved.env == ["HOSTNAME=web.1", "PATH=/bin", "A=1", "HOME=/home/app"]
    assert (st.resolved.uid, st.resolved.gid, st.resolved.groups) == (1000, 1000, [50])
    assert st.info().labels == {"service": "web"} and st.info().image_id == "sha256:abc"


def test_a_format_1_cap_drop_all_stays_without_capabilities() -> None:
    assert state.ContainerState.from_json(json.dumps(FORMAT_1)).spec.caps == 0


def test_a_format_1_file_from_before_argv_was_resolved_gets_the_configs_values() -> None:
    old = {k: v for k, v in FORMAT_1.items() if k not in ("argv", "env", "workdir", "caps")}
    old["config"] = {**FORMAT_1["config"], "args": ["/bin/true"], "workdir": "/w"}  # type: ignore[dict-item]
    st = state.ContainerState.from_json(json.dumps(old))
    assert st.resolved.argv == ["/bin/true"] and st.resolved.workdir == "/w"
    assert st.spec.caps == caps.DOCKER_DEFAULT_MASK
    assert st.resolved.env[-1] == "HOME=/home/app" and "A=1" in st.resolved.env


def test_save_replaces_atomically_and_load_all_separates_orphans(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.ensure()
    for cid in ("c1", "c2", "orphan"):
        os.mkdir(layout.container_dir(cid))
    state.save(layout, make_state("c1"))
    state.save(layout, make_state("c2", status="exited"))
    Path(layout.state_file("orphan")).write_text("{not json")
    states, orphans = state.load_all(layout)
    assert sorted(states) == ["c1", "c2"] and states["c2"].status == "exited"
    assert orphans == ["orphan"]
    assert not any(p.name.endswith(".tmp") for p in Path(layout.container_dir("c1")).iterdir())


def test_load_all_of_a_fresh_state_dir_is_empty(tmp_path: Path) -> None:
    assert state.load_all(Layout(tmp_path / "never-made")) == ({}, [])


def test_remove_container_dir_takes_everything_state_file_last(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.ensure()
    cid = "c1"
    os.mkdir(layout.container_dir(cid))
    for d in (layout.rootfs(cid), layout.upper(cid), layout.work(cid)):
        os.mkdir(d)
    os.mkdir(os.path.join(layout.work(cid), "work"))
    Path(layout.upper(cid), "written-by-the-container").write_text("x")
    Path(layout.log_path(cid)).write_text("log")
    state.save(layout, make_state(cid))
    state.remove_container_dir(layout, cid)
    assert not os.path.exists(layout.container_dir(cid))
    state.remove_container_dir(layout, cid)  # already gone: no error


def test_proc_start_time_tells_a_live_pid_from_a_missing_one() -> None:
    assert state.proc_start_time(os.getpid()) > 0
    assert state.proc_start_time(2**22 + 12345) == 0


def test_layout_paths_live_under_the_state_dir(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "s")
    root = str(tmp_path / "s")
    assert layout.socket == f"{root}/launcher.sock" and layout.lock == f"{root}/launcher.lock"
    assert layout.state_file("a") == f"{root}/containers/a/state.json"
    assert layout.default_images == f"{root}/images" and layout.volumes == f"{root}/volumes"
    layout.ensure()
    assert os.stat(root).st_mode & 0o777 == 0o700
