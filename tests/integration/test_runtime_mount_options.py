"""The runtime as root with docker's create options: read-only root, tmpfs options, a new volume filled
from the image (or not, with volume-nocopy) and kept, anonymous volumes, ulimits, namespaced sysctls,
supplementary groups, the stop signal and the log's rotation (json-file's max-size and max-file)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from shoal.runtime import ContainerConfig, ContainerInfo, Runtime, StartError, logs
from tests.fixtures import busybox_image

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


async def run(rt: Runtime, cid: str, script: str, **kw: object) -> tuple[ContainerInfo, str]:
    await rt.create(ContainerConfig(id=cid, image="busybox", args=["sh", "-c", script], **kw))  # type: ignore[arg-type]
    await rt.start(cid)
    info = await asyncio.wait_for(rt.wait(cid), 20)
    return info, logs.text(info.log_path)


async def test_read_only_root_with_writable_mounts(rt: Runtime, tarball: Path) -> None:
    await rt.load_image(tarball)
    script = ("touch /etc/x 2>&1 | grep -c Read-only; echo ok > /scratch/f && cat /scratch/f; stat -c %a /scratch; "
              "df -k /scratch | tail -1 | awk '{print $2}'; echo v > /data/f && cat /data/f; echo s > /dev/shm/s && echo shm")
    mounts = [{"type": "tmpfs", "target": "/scratch", "tmpfs_size": 2 << 20, "tmpfs_mode": 0o700},
              {"type": "volume", "source": "rovol", "target": "/data"}]
    info, log = await run(rt, "ro", script, read_only=True, mounts=mounts)
    assert info.exit_code == 0 and log.splitlines() == ["1", "ok", "700", "2048", "v", "shm"], log
    info, log = await run(rt, "rw", "touch /etc/x && echo writable")
    assert log == "writable\n", "without read_only the root stays writable"


async def test_a_missing_working_directory_is_made_even_on_a_read_only_root(rt: Runtime, tarball: Path) -> None:
    """Regression (tests/e2e/test_stack_lab.py: a stack's ``working_dir: /srv/app`` failed every task with
    'chdir to cwd ("/srv/app") set in config: No such file or directory'): docker makes it, root's, 0755."""
    await rt.load_image(tarball)
    info, log = await run(rt, "wd", "pwd; stat -c '%a %u' .; touch x 2>&1 | grep -c Read-only", read_only=True, workdir="/srv/app",
                          user="1000:1000")
    assert info.exit_code == 0 and log.splitlines() == ["/srv/app", "755 0", "1"], log
    info, log = await run(rt, "wd2", "pwd", workdir="/etc/../opt/./x")
    assert log == "/opt/x\n", log


async def test_a_new_volume_gets_the_image_content_once_and_keeps_its_data(rt: Runtime, tarball: Path) -> None:
    await rt.load_image(tarball)
    www = {"type": "volume", "source": "www", "target": "/var/www"}
    info, log = await run(rt, "a", "cat /var/www/index.html; echo mine > /var/www/mine", mounts=[www])
    assert log == "hello from busybox\n", log
    await rt.delete("a")
    info, log = await run(rt, "b", "ls /var/www", mounts=[www])
    assert log.split() == ["index.html", "mine"], "a volume keeps its data across containers"
    volume = (await rt.volume("inspect", "www"))["volume"]
    assert sorted(os.listdir(volume["mountpoint"])) == ["index.html", "mine"]
    nocopy = {**www, "source": "www-empty", "volume_nocopy": True}
    info, log = await run(rt, "c", "ls -A /var/www | wc -l", mounts=[nocopy])
    assert log.strip() == "0", "volume_nocopy leaves a new volume empty"


async def test_an_anonymous_volume_is_named_after_its_container(rt: Runtime, tarball: Path) -> None:
    await rt.load_image(tarball)
    info, log = await run(rt, "anon1", "echo x > /scratch/x && echo done", mounts=[{"type": "volume", "target": "/scratch"}])
    assert log == "done\n"
    assert "x" in os.listdir((await rt.volume("inspect", "anon1"))["volume"]["mountpoint"])


async def test_ulimits_sysctls_and_groups(rt: Runtime, tarball: Path) -> None:
    await rt.load_image(tarball)
    host_somaxconn = Path("/proc/sys/net/core/somaxconn").read_text()
    script = "ulimit -n; ulimit -Hn; cat /proc/sys/net/core/somaxconn; cat /proc/sys/kernel/shmmni; id -G"
    info, log = await run(rt, "lim", script, user="app", ulimits=[{"name": "nofile", "soft": 100, "hard": 200}],
                          sysctls={"net.core.somaxconn": "77", "kernel.shmmni": "1000"}, group_add=["staff", "1234"])  # fmt: skip
    assert info.exit_code == 0 and log.splitlines() == ["100", "200", "77", "1000", "1000 50 1234"], log
    assert Path("/proc/sys/net/core/somaxconn").read_text() == host_somaxconn, "the node's own value is untouched"


async def test_an_unknown_sysctl_fails_the_start_with_its_name(rt: Runtime, tarball: Path) -> None:
    await rt.load_image(tarball)
    await rt.create(ContainerConfig(id="nosys", image="busybox", args=["true"], sysctls={"net.core.no_such_knob": "1"}))
    with pytest.raises(StartError, match="sysctl net.core.no_such_knob"):
        await rt.start("nosys")


async def test_stop_sends_the_configured_signal_first(rt: Runtime, tarball: Path) -> None:
    await rt.load_image(tarball)
    script = "trap 'echo got-usr1; exit 3' USR1; echo up; while true; do sleep 0.1; done"
    await rt.create(ContainerConfig(id="sig", image="busybox", args=["sh", "-c", script], stop_signal="SIGUSR1"))
    info = await rt.start("sig")
    for _ in range(100):
        if "up" in logs.text(info.log_path):
            break
        await asyncio.sleep(0.05)
    done = await rt.stop("sig", grace_s=10)
    assert done.exit_code == 3 and "got-usr1" in logs.text(info.log_path)


async def test_the_log_rotates_at_max_size_and_keeps_max_file_files(rt: Runtime, tarball: Path) -> None:
    await rt.load_image(tarball)
    script = "i=0; while [ $i -lt 400 ]; do echo line-$i-padding-padding-padding-padding; i=$((i+1)); done"
    info, _ = await run(rt, "logs5", script, log_max_size=4096, log_max_files=5)
    assert info.exit_code == 0
    assert sorted(os.listdir(os.path.dirname(info.log_path))).count(os.path.basename(info.log_path) + ".4") == 1
    assert not os.path.exists(info.log_path + ".5"), "max-file 5: the log and four rotated files"
    lines = [r["log"] for r in logs.records(info.log_path)]
    assert lines[-1] == "line-399-padding-padding-padding-padding\n" and 100 < len(lines) < 400, len(lines)
    assert [int(line.split("-")[1]) for line in lines] == sorted(int(line.split("-")[1]) for line in lines), "oldest first"
    assert all(os.path.getsize(p) <= 4096 for p in logs.files(info.log_path))
    info, _ = await run(rt, "logs1", script, log_max_size=4096, log_max_files=1)
    assert logs.files(info.log_path) == [info.log_path], "max-file 1: the log alone, cut at max-size"
