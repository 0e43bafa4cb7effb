"""Many launches and many failures leave nothing behind: cgroup, mount, process, netns, state file.

200 create/start/stop/delete cycles on the busybox image, then 50 launches that fail at different
steps (missing image, command not in the image, impossible limits, missing bind source, unknown
capability, corrupt image archive), then a census of everything a container can leave.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from shoal.runtime import (
    ConfigError,
    ContainerConfig,
    ContainerError,
    ImageLoadError,
    ImageNotFound,
    Runtime,
    StartError,
)
from shoal.runtime.launcher import logshim
from tests.fixtures import busybox_image

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: containers use namespaces, mounts and cgroups"),
    pytest.mark.skipif(not os.path.exists(busybox_image.BUSYBOX), reason="needs Debian's busybox-static"),
]


def _cgroup_dirs(parent: str) -> list[Path]:
    """Every cgroup dir named ``parent``; os.walk skips dirs that other tests remove while it looks."""
    found = []
    for base in Path("/sys/fs/cgroup").iterdir():
        if base.is_dir():
            found += [Path(top, parent) for top, dirs, _ in os.walk(base) if parent in dirs]
    return found


def _census(parent: str, state: Path) -> dict[str, object]:
    mounts = [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(state) in line]
    procs = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if parent in Path(f"/proc/{pid}/cgroup").read_text():
                procs.append(pid)
        except OSError:
            continue
    leftovers = [Path(d, c) for d in _cgroup_dirs(parent) for c in next(os.walk(d), ("", [], []))[1]]
    return {
        "cgroups": leftovers,
        "mounts": mounts,
        "procs": procs,
        "containers": sorted(os.listdir(state / "containers")),
        "tmp": sorted(os.listdir(state / "images" / "tmp")),
    }


CYCLES = int(os.environ.get("SHOAL_TEST_CYCLES", "200"))
"""Create/start/stop/delete rounds; the cgroup-v2 VM (software-emulated, tests/v2vm) runs fewer."""


def _children(ppid: int) -> list[str]:
    kids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rfind(")") + 2 :].split()[1]) == ppid:
            kids.append(pid)
    return kids


async def test_cycles_and_failures_leave_nothing(tmp_path: Path) -> None:
    parent = f"shoal-test-{uuid.uuid4().hex[:8]}"
    state = tmp_path / "state"
    tar = tmp_path / "bb.tar"
    busybox_image.build(str(tar))
    corrupt = tmp_path / "corrupt.tar"
    busybox_image.build(str(corrupt), tag="c:1", extra_layers=[{"a": b"a"}], corrupt_diff_id=True)
    rt = Runtime(state, cgroup_parent=parent)
    await rt.open()
    try:
        await rt.load_image(tar)
        limits = {"memory_bytes": 64 << 20, "pids_limit": 64, "nano_cpus": 500_000_000}
        for i in range(CYCLES):
            cid = f"c{i}"
            await rt.create(ContainerConfig(id=cid, image="busybox", args=["sleep", "10"], init=i % 2 == 0, **limits))  # type: ignore[arg-type]
            await rt.start(cid)
            await rt.stop(cid, grace_s=0 if i % 4 else 1)
            await rt.delete(cid)
        failing = [
            (ImageNotFound, {"image": "nothere:latest", "args": ["true"]}),
            (StartError, {"image": "busybox", "args": ["not-in-image"]}),
            (ConfigError, {"image": "busybox", "args": ["true"], "nano_cpus": 1000 * 10**9}),
            (ConfigError, {"image": "busybox", "args": ["true"], "mounts": [{"type": "bind", "source": "/no/such/dir", "target": "/x"}]}),
            (ConfigError, {"image": "busybox", "args": ["true"], "cap_add": ["NOT_A_CAP"]}),
        ]
        for i in range(50):
            exc_type, kw = failing[i % len(failing)]
            cid = f"f{i}"
            with pytest.raises(exc_type):
                await rt.create(ContainerConfig(id=cid, **kw))  # type: ignore[arg-type]
                await rt.start(cid)
            if exc_type is StartError:
                await rt.delete(cid)
        with pytest.raises(ImageLoadError):
            await rt.load_image(corrupt)
        assert [c.id for c in await rt.list()] == []
        census = _census(parent, state)
        assert census == {"cgroups": [], "mounts": [], "procs": [], "containers": [], "tmp": []}
        kids = _children(rt.launcher_pid or 0)
        assert [k for k in kids if Path(f"/proc/{k}/comm").read_text().strip() != logshim.COMM] == []  # no exec helper
        assert len(kids) <= 1, "one log daemon per launcher, none per container"
        # A container's network namespace (and its veths) lives exactly as long as its processes: none
        # are left ("procs" above), and the runtime never pins one with a bind mount ("mounts" above).
        # /run/netns is not compared: other tests on this machine may create named netns meanwhile.
    finally:
        for c in await rt.list():
            try:
                await rt.delete(c.id, force=True)
            except ContainerError:
                pass
        await rt.close()
    assert _cgroup_dirs(parent) == []  # the launcher removed its parent cgroups on exit
