"""The cgroup v2 code path, exercised even on a hybrid host whose controllers are bound to v1.

On this kind of machine /sys/fs/cgroup/unified is a cgroup2 tree with (almost) no controllers, so
create/join/kill/delete can be tested there but limits cannot: the test then checks that asking for
a limit fails with a clear ConfigError. A second test repeats the lifecycle on a cgroup2 hierarchy
mounted fresh inside a private mount namespace (``unshare -m``), as a v2-only host would have it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from shoal.runtime.cgroup import hierarchy as cl
from shoal.runtime.cgroup.limits import Limits
from shoal.runtime.cgroup.v2 import CgroupsV2
from shoal.runtime.errors import ConfigError
from tests.fixtures.cgroups import exercise_lifecycle

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: writes to the cgroup filesystem"),
]


def _v2_mount() -> cl.CgroupMount | None:
    mounts = [m for m in cl.parse_mountinfo(Path("/proc/self/mountinfo").read_text()) if m.version == 2]
    return mounts[0] if mounts else None


def _own_v2_path() -> str:
    return cl.parse_proc_cgroup(Path("/proc/self/cgroup").read_text()).get("", "/")


def test_v2_lifecycle_on_the_hosts_cgroup2_tree() -> None:
    mount = _v2_mount()
    if mount is None:
        pytest.skip(reason="no cgroup2 filesystem is mounted on this host")
    cg = CgroupsV2(mount, _own_v2_path(), f"shoal-test-v2-{uuid.uuid4().hex[:8]}")
    try:
        exercise_lifecycle(cg, "c1")
    finally:
        cg.delete("c1")
        cg.cleanup_parent()


def test_v2_limits_or_a_clear_error_when_controllers_live_in_v1() -> None:
    mount = _v2_mount()
    if mount is None:
        pytest.skip(reason="no cgroup2 filesystem is mounted on this host")
    cg = CgroupsV2(mount, _own_v2_path(), f"shoal-test-v2-{uuid.uuid4().hex[:8]}")
    limits = Limits(memory_bytes=64 << 20, pids=20, nano_cpus=500_000_000)
    available = set(Path(cg.top, "cgroup.controllers").read_text().split())
    try:
        if not {"memory", "pids", "cpu"} <= available:
            with pytest.raises(ConfigError, match="not available"):
                cg.create("lim", limits)
            assert not Path(cg.dirs("lim")[0]).exists()
            return
        cg.create("lim", limits)
        d = Path(cg.dirs("lim")[0])
        assert (d / "memory.max").read_text().strip() == str(64 << 20)
        assert (d / "memory.oom.group").read_text().strip() == "1"
        assert (d / "pids.max").read_text().strip() == "20"
        assert (d / "cpu.max").read_text().split() == ["50000", "100000"]
    finally:
        cg.delete("lim")
        cg.cleanup_parent()


HELPER = textwrap.dedent(
    """
    import os, subprocess, sys, tempfile, uuid
    target = tempfile.mkdtemp(prefix="shoal-cg2-")
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    subprocess.run(["mount", "-t", "cgroup2", "none", target], check=True)
    try:
        from shoal.runtime.cgroup import hierarchy as cl
        from shoal.runtime.cgroup.v2 import CgroupsV2
        sys.path.insert(0, sys.argv[1])
        from tests.fixtures.cgroups import exercise_lifecycle
        mount = cl.CgroupMount(target, "/", 2, frozenset())
        cg = CgroupsV2(mount, "/", "/shoal-test-v2ns-" + uuid.uuid4().hex[:8])
        try:
            exercise_lifecycle(cg, "c1")
        finally:
            cg.delete("c1")
            cg.cleanup_parent()
        print("V2-OK")
    finally:
        subprocess.run(["umount", target], check=True)
        os.rmdir(target)
    """
)


def test_v2_lifecycle_on_a_cgroup2_mounted_in_a_private_mount_namespace() -> None:
    if shutil.which("unshare") is None:
        pytest.skip(reason="util-linux unshare not installed")
    if "cgroup2" not in Path("/proc/filesystems").read_text():
        pytest.skip(reason="the kernel has no cgroup2 filesystem")
    root = str(Path(__file__).resolve().parents[2])
    res = subprocess.run(
        ["unshare", "-m", sys.executable, "-c", HELPER, root],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
    )
    if res.returncode != 0 and "mount" in res.stderr and "EBUSY" in res.stderr:
        pytest.skip(reason=f"cannot mount a cgroup2 hierarchy here: {res.stderr.strip()[-200:]}")
    assert res.returncode == 0 and "V2-OK" in res.stdout, res.stdout + res.stderr
