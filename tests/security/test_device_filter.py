"""Exploits: a container's root opens the host's disk through a device node it made (issue 11, High 4).

CAP_MKNOD is in Docker's default set, so a container may create any node. On cgroup v1 the devices
cgroup stops the open; cgroup v2 has no such file, so before the fix a v2 host let the process open
the node and read the disk. The first test runs the runtime's v2 cgroup code on whatever cgroup2
tree the host has (on this hybrid host the nearly empty /sys/fs/cgroup/unified: BPF device programs
attach to any v2 cgroup), the second a whole container (v1 or v2, whichever the host has; the
cgroup-v2 VM suite runs it on a v2-only host).

The disk is a real block device of this machine that the test itself can open (the root
filesystem's when allowed, else e.g. a loop device); the tests only open it read-only.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.runtime import ContainerConfig, Runtime, logs
from shoal.runtime.cgroup import devices
from shoal.runtime.cgroup import hierarchy as cl
from shoal.runtime.cgroup.limits import Limits
from shoal.runtime.cgroup.v2 import CgroupsV2
from tests.fixtures import busybox_image
from tests.fixtures.runtime import device_tmpdir

pytestmark = [pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="needs root: cgroups and mknod")]


def a_disk(devdir: Path) -> tuple[int, int]:
    """(major, minor) of a block device this test process can open (the root filesystem's first)."""
    st = os.stat("/")
    names = [f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"]
    names += sorted(os.listdir("/sys/dev/block")) if os.path.isdir("/sys/dev/block") else []
    probe = devdir / "probe"
    tried = []
    for name in names:
        major, minor = (int(x) for x in name.split(":"))
        try:
            os.mknod(probe, 0o060600, os.makedev(major, minor))
            os.close(os.open(probe, os.O_RDONLY))
            return major, minor
        except OSError as exc:
            tried.append(f"{name}: {exc.strerror}")
            continue
        finally:
            probe.unlink(missing_ok=True)
    pytest.skip(reason=f"no block device on this machine that root can open outside a container ({', '.join(tried)})")


@pytest.fixture
def devdir() -> Iterator[Path]:
    """A directory on a filesystem that allows device nodes (tests/fixtures/runtime.py)."""
    d = Path(device_tmpdir())
    yield d
    shutil.rmtree(d, ignore_errors=True)


PROBE = textwrap.dedent(
    """
    import os, sys
    procs, node, major, minor = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with open(procs, "w") as f:
        f.write("0")
    os.mknod(node, 0o060600, os.makedev(major, minor))
    print("mknod ok")
    try:
        fd = os.open(node, os.O_RDONLY)
    except OSError as exc:
        print("open refused", exc.errno)
    else:
        print("read", len(os.read(fd, 512)), "bytes of the disk")
    """
)


def test_on_cgroup_v2_a_mknodded_disk_cannot_be_opened(devdir: Path) -> None:
    mounts = [m for m in cl.parse_mountinfo(Path("/proc/self/mountinfo").read_text()) if m.version == 2]
    if not mounts:
        pytest.skip(reason="no cgroup2 filesystem is mounted on this host")
    own = cl.parse_proc_cgroup(Path("/proc/self/cgroup").read_text()).get("", "/")
    cg = CgroupsV2(mounts[0], own, f"shoal-test-dev-{uuid.uuid4().hex[:8]}")
    major, minor = a_disk(devdir)
    cg.create("c1", Limits())
    try:
        assert devices.attached(cg.dirs("c1")[0]) == 1, "the allow-list program is on the container's cgroup"
        procs = os.path.join(cg.dirs("c1")[0], "cgroup.procs")
        out = subprocess.run(
            [sys.executable, "-c", PROBE, procs, str(devdir / "disk"), str(major), str(minor)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    finally:
        cg.delete("c1")
        cg.cleanup_parent()
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["mknod ok", "open refused 1"], out.stdout  # EPERM


@pytest.mark.skipif(not os.path.exists(busybox_image.BUSYBOX), reason="needs Debian's busybox-static")
async def test_a_container_keeps_cap_mknod_but_cannot_open_the_disk_it_made(tmp_path: Path, devdir: Path) -> None:
    """On the image's root (mounted nodev) and on a bind mount that allows devices (only the device
    filter stands there): mknod works, opening fails."""
    major, minor = a_disk(devdir)
    busybox_image.build(str(tmp_path / "bb.tar"))
    rt = Runtime(tmp_path / "state", cgroup_parent=f"shoal-test-{uuid.uuid4().hex[:8]}")
    await rt.open()
    try:
        await rt.load_image(tmp_path / "bb.tar")
        script = (
            f"mknod /data/disk b {major} {minor} && echo made-bind; head -c 512 /data/disk >/dev/null && echo READ-BIND; "
            f"mknod /disk b {major} {minor} && echo made-root; head -c 512 /disk >/dev/null && echo READ-ROOT; exit 0"
        )
        mounts = [{"type": "bind", "source": str(devdir), "target": "/data"}]
        await rt.create(ContainerConfig(id="mk", image="busybox", args=["sh", "-c", script], mounts=mounts))
        await rt.start("mk")
        info = await asyncio.wait_for(rt.wait("mk"), 30)
        log = logs.text(info.log_path)
    finally:
        for c in await rt.list():
            await rt.delete(c.id, force=True)
        await rt.close()
    assert "made-bind" in log and "made-root" in log, f"CAP_MKNOD is kept: {log!r}"
    assert "READ-BIND" not in log and "READ-ROOT" not in log, log
    assert "Operation not permitted" in log, f"the device filter refuses the bind's node: {log!r}"


@pytest.mark.skipif(not os.path.exists(busybox_image.BUSYBOX), reason="needs Debian's busybox-static")
async def test_image_and_host_roots_are_nodev_but_dev_null_works(tmp_path: Path) -> None:
    busybox_image.build(str(tmp_path / "bb.tar"))
    rt = Runtime(tmp_path / "state", cgroup_parent=f"shoal-test-{uuid.uuid4().hex[:8]}")
    await rt.open()
    try:
        await rt.load_image(tmp_path / "bb.tar")
        script = "grep -E '^[^ ]+ / ' /proc/mounts; echo hi > /dev/null && echo null-ok; exit 0"
        await rt.create(ContainerConfig(id="img", image="busybox", args=["sh", "-c", script]))
        await rt.create(ContainerConfig(id="hst", image="host", args=["/bin/sh", "-c", script]))
        logs_by_id = {}
        for cid in ("img", "hst"):
            await rt.start(cid)
            info = await asyncio.wait_for(rt.wait(cid), 30)
            logs_by_id[cid] = logs.text(info.log_path)
    finally:
        for c in await rt.list():
            await rt.delete(c.id, force=True)
        await rt.close()
    for cid, log in logs_by_id.items():
        root_line = log.splitlines()[0]
        assert "nodev" in root_line.split()[3].split(","), f"{cid}: {root_line}"
        assert "null-ok" in log, f"{cid}: /dev/null still works: {log!r}"
