"""cgroup limits and accounting as root: cpu quota, shares, devices allow-list, stats, logs."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from pathlib import Path

import pytest

from shoal.runtime import ContainerConfig, Runtime, logs
from shoal.runtime.cgroup.limits import DEVICE_RULES
from tests.fixtures import busybox_image
from tests.fixtures.runtime import device_tmpdir
from tests.timing import eventually, scaled

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: containers use namespaces, mounts and cgroups"),
]
LOOP = ["/bin/sh", "-c", "while :; do :; done"]
DEVICES_V1_ONLY = (
    "cgroup v1 twin: v1 devices-controller rule inheritance; on v2 the allow-list is a BPF program on each "
    "container's cgroup (test_runtime_cgroup_twins.py::test_v2_device_program_on_each_containers_cgroup)"
)


def _v1_dir(controller: str, cgroup: str) -> Path | None:
    own = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(","):
            own[c] = path
    base = Path("/sys/fs/cgroup") / controller
    if controller not in own or not base.is_dir():
        return None
    return base / own[controller].lstrip("/") / cgroup.lstrip("/")


async def test_cpu_quota_holds_a_busy_loop_near_its_share(rt: Runtime) -> None:
    """0.2 CPU: the loop gets CPU time (it reaches 0.25 s) and never more than its quota over the window.
    Polled until the loop has used its 0.25 s, so a loaded machine makes the window longer, not the test flaky."""
    await rt.create(ContainerConfig(id="q", image="host", args=LOOP, nano_cpus=200_000_000, cpu_shares=512))
    info = await rt.start("q")
    before, t0 = await rt.stats("q"), time.monotonic()

    async def used() -> float | None:
        spent = (await rt.stats("q")).cpu_seconds - before.cpu_seconds
        return spent if spent >= 0.25 else None

    spent = await eventually(used, 30, "0.25 s of CPU time for the busy loop", interval=0.1)
    elapsed = time.monotonic() - t0
    assert spent / elapsed < 0.3, f"0.2 CPU used {spent:.3f} s in {elapsed:.2f} s"
    after = await rt.stats("q")
    assert after.pids == 1 and after.memory_bytes > 0
    cpu = _v1_dir("cpu", info.cgroup)
    if cpu is not None:
        assert (cpu / "cpu.shares").read_text().strip() == "512"


async def test_stats_report_memory_peak_and_limit(rt: Runtime) -> None:
    script = "x=$(head -c 20000000 /dev/zero | tr '\\0' a); sleep 30"
    await rt.create(
        ContainerConfig(id="m", image="host", args=["/bin/sh", "-c", script], memory_bytes=128 << 20)
    )
    await rt.start("m")
    deadline = time.monotonic() + scaled(10)
    while (st := await rt.stats("m")).memory_peak_bytes < 20_000_000 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert st.memory_limit_bytes == 128 << 20
    assert st.memory_peak_bytes >= 20_000_000 and st.memory_peak_bytes >= st.memory_bytes


async def test_devices_allow_list_blocks_a_node_made_inside(rt: Runtime, tmp_path: Path) -> None:
    """The device allow-list (v1 devices cgroup, v2 BPF program) refuses /dev/mem made with CAP_MKNOD.

    The node is made on a bind mount of a directory that allows devices: the image's root is nodev,
    which would refuse it first (EACCES) and hide whether the allow-list works.
    """
    tar = tmp_path / "bb.tar"
    busybox_image.build(str(tar))
    await rt.load_image(tar)
    devdir = device_tmpdir()
    script = "mknod /data/mem c 1 1 && head -c1 /data/mem; echo rc=$?; head -c1 /dev/zero | wc -c"
    mounts = [{"type": "bind", "source": devdir, "target": "/data"}]
    try:
        await rt.create(ContainerConfig(id="d", image="busybox", args=["sh", "-c", script], mounts=mounts))
        await rt.start("d")
        info = await rt.wait("d")
    finally:
        shutil.rmtree(devdir, ignore_errors=True)
    recs = list(logs.records(info.log_path))
    out = [r["log"] for r in recs if r["stream"] == "stdout"]
    err = "".join(r["log"] for r in recs if r["stream"] == "stderr")
    assert out == ["rc=1\n", "1\n"] and "/data/mem: Operation not permitted" in err, recs


async def test_device_rules_are_inherited_from_the_parent_or_written(tmp_path: Path) -> None:
    """A parent the runtime makes carries the allow-list; under a pre-existing unrestricted parent
    the container's own cgroup gets it rule by rule. Either way the container has exactly it."""
    if _v1_dir("devices", "/") is None:
        pytest.skip(reason=DEVICES_V1_ONLY)
    expected = sorted(DEVICE_RULES)
    for premade in (False, True):
        parent = f"shoal-test-{uuid.uuid4().hex[:8]}"
        parent_dir = _v1_dir("devices", "/" + parent)
        assert parent_dir is not None
        if premade:
            parent_dir.mkdir()  # made by someone else: "a *:* rwm", left as it is
        runtime = Runtime(tmp_path / f"state-{premade}", cgroup_parent=parent)
        await runtime.open()
        try:
            info = await runtime.create(ContainerConfig(id="dv", image="host", args=["true"]))
            ctr_dir = _v1_dir("devices", info.cgroup)
            assert ctr_dir is not None
            assert sorted((ctr_dir / "devices.list").read_text().split("\n")[:-1]) == expected
            parent_rules = (parent_dir / "devices.list").read_text().split("\n")[:-1]
            assert parent_rules == (["a *:* rwm"] if premade else list(DEVICE_RULES))
        finally:
            await runtime.delete("dv", force=True)
            await runtime.close()
            if parent_dir.exists():
                parent_dir.rmdir()


async def test_logs_are_timestamped_json_lines_per_stream(rt: Runtime) -> None:
    script = "echo out1; echo err1 >&2; printf partial"
    await rt.create(ContainerConfig(id="l", image="host", args=["/bin/sh", "-c", script]))
    await rt.start("l")
    info = await rt.wait("l")
    recs = list(logs.records(info.log_path))
    assert sorted((r["stream"], r["log"]) for r in recs) == [
        ("stderr", "err1\n"),
        ("stdout", "out1\n"),
        ("stdout", "partial"),
    ]
    assert all(r["time"].endswith("Z") and r["time"][:2] == "20" for r in recs)


RAW = "import socket\ntry:\n    socket.socket(socket.AF_INET, socket.SOCK_RAW, 1)\n    print('raw ok')\nexcept PermissionError:\n    print('raw refused')"


@pytest.mark.skipif(
    not os.path.exists("/usr/bin/python3"), reason="needs the host's python3 for a raw socket"
)
async def test_mount_refused_raw_sockets_follow_net_raw(rt: Runtime) -> None:
    script = f"mount -t tmpfs x /tmp 2>&1 | grep -c 'permission denied'; /usr/bin/python3 -c \"{RAW}\""
    for cid, drop, expected in (("dflt", [], "raw ok"), ("noraw", ["NET_RAW"], "raw refused")):
        await rt.create(ContainerConfig(id=cid, image="host", args=["/bin/sh", "-c", script], cap_drop=drop))
        await rt.start(cid)
        info = await rt.wait(cid)
        assert logs.text(info.log_path).split("\n")[:2] == ["1", expected], logs.text(info.log_path)
