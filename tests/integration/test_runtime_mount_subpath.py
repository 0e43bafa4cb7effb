"""The runtime as root with a volume's subpath and a bind mount's propagation (docker's volume-subpath and
bind-propagation; compose's ``volume: {subpath}`` and ``bind: {propagation}``): data written at a subpath
lands in that directory of the volume, and a propagation mode shows in the container's mountinfo and
does what it says (an rslave mount sees what the node mounts below its source after the start)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.runtime import ConfigError, ContainerConfig, ContainerInfo, Runtime, logs
from tests.fixtures import busybox_image
from tests.fixtures.runtime import wait_for_log

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: containers use namespaces, mounts and cgroups"),
    pytest.mark.skipif(not os.path.exists(busybox_image.BUSYBOX), reason="needs Debian's busybox-static"),
]


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("images") / "busybox.tar"
    busybox_image.build(str(path))
    return path


@pytest.fixture
def shared_dir(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of this test's own, made a shared mount on the node (docker needs one for shared/slave)."""
    src = tmp_path / "shared"
    src.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "shoal-test", str(src)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(src)], check=True)
        yield src
    finally:
        subprocess.run(["umount", "-R", "-l", str(src)], check=False)


async def run(rt: Runtime, cid: str, script: str, mounts: list[dict]) -> tuple[ContainerInfo, str]:
    await rt.create(ContainerConfig(id=cid, image="busybox", args=["sh", "-c", script], mounts=mounts))
    await rt.start(cid)
    info = await asyncio.wait_for(rt.wait(cid), 20)
    return info, logs.text(info.log_path)


async def test_data_written_at_a_subpath_lands_in_that_directory_of_the_volume(rt: Runtime, tarball: Path) -> None:
    await rt.load_image(tarball)
    logs_a = {"type": "volume", "source": "app", "target": "/data", "volume_subpath": "logs/a"}
    info, log = await run(rt, "a", "echo from-a > /data/f && ls -A /data | wc -l", [logs_a])
    assert info.exit_code == 0 and log.strip() == "1", log
    volume = Path((await rt.volume("inspect", "app"))["volume"]["mountpoint"])
    assert (volume / "logs" / "a" / "f").read_text() == "from-a\n"
    assert sorted(os.listdir(volume)) == ["logs"], "nothing is written at the volume's root"
    info, log = await run(rt, "b", "cat /data/a/f; ls /data", [{**logs_a, "volume_subpath": "logs"}])
    assert log.split() == ["from-a", "a"], "another container sees the volume from its own subpath"
    info, log = await run(rt, "c", "ls /data/logs/a", [{**logs_a, "volume_subpath": ""}])
    assert log.split() == ["f"], "no subpath: the volume's root"


async def test_a_subpath_symlink_that_stays_inside_the_volume_is_followed(rt: Runtime, tarball: Path) -> None:
    await rt.load_image(tarball)
    vol = {"type": "volume", "source": "links", "target": "/data"}
    await run(rt, "mk", "mkdir -p /data/real && echo in > /data/real/f && ln -s real /data/alias", [vol])
    info, log = await run(rt, "use", "cat /data/f", [{**vol, "volume_subpath": "alias"}])
    assert log == "in\n", log


def _propagation_line(log: str) -> str:
    lines = [line for line in log.splitlines() if " /mnt " in line]
    assert len(lines) == 1, log
    return lines[0]


async def test_rslave_shows_master_and_receives_what_the_node_mounts_later(rt: Runtime, tarball: Path, shared_dir: Path) -> None:
    await rt.load_image(tarball)
    script = "cat /proc/self/mountinfo; echo ready; while [ ! -e /mnt/sub/marker ]; do sleep 0.05; done; echo seen"
    bind = {"type": "bind", "source": str(shared_dir), "target": "/mnt", "bind_propagation": "rslave"}
    await rt.create(ContainerConfig(id="slave", image="busybox", args=["sh", "-c", script], mounts=[bind]))
    info = await rt.start("slave")
    log = await wait_for_log(info, "ready")
    line = _propagation_line(log)
    assert "master:" in line and "shared:" not in line, line
    (shared_dir / "sub").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "shoal-test-sub", str(shared_dir / "sub")], check=True)
    (shared_dir / "sub" / "marker").write_text("x")
    await wait_for_log(info, "seen")
    assert (await asyncio.wait_for(rt.wait("slave"), 20)).exit_code == 0


async def test_shared_private_and_the_default(rt: Runtime, tarball: Path, shared_dir: Path) -> None:
    await rt.load_image(tarball)
    bind = {"type": "bind", "source": str(shared_dir), "target": "/mnt"}
    shown = {}
    for mode in ("rshared", "private", ""):
        info, log = await run(rt, f"p{mode or 'default'}", "cat /proc/self/mountinfo", [{**bind, "bind_propagation": mode}])
        shown[mode] = _propagation_line(log)
    assert "shared:" in shown["rshared"] and "master:" in shown["rshared"], shown["rshared"]
    for mode in ("private", ""):
        assert "shared:" not in shown[mode] and "master:" not in shown[mode], (mode, shown[mode])


async def test_shared_or_slave_needs_a_shared_source_as_docker_says(rt: Runtime, tarball: Path, tmp_path: Path) -> None:
    await rt.load_image(tarball)
    src = tmp_path / "private"
    src.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "shoal-test-priv", str(src)], check=True)
    try:
        subprocess.run(["mount", "--make-private", str(src)], check=True)
        for mode in ("rshared", "slave"):
            bind = {"type": "bind", "source": str(src), "target": "/mnt", "bind_propagation": mode}
            with pytest.raises(ConfigError, match=f"path {src} is mounted on {src} but it is not a shared"):
                await rt.create(ContainerConfig(id=f"no-{mode}", image="busybox", args=["true"], mounts=[bind]))
        assert await rt.list() == [], "a refused create leaves no container"
    finally:
        subprocess.run(["umount", "-l", str(src)], check=False)
