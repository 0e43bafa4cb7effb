"""Start-time files (what the worker uses for secrets and configs) on the real runtime, as root.

The data must reach the container at its path, with its owner and mode, read-only; it must never be
written under the runtime's state dir (on disk), never show in the host's mount table, and be gone
when the container ends. The attacks: an image whose /run/secrets is a symlink to a host path, a
target that escapes, and a launcher log of a failed start request.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from shoal.runtime import ConfigError, ContainerConfig, ContainerFile, Runtime, StartError, logs
from shoal.runtime.launcher.server import loggable
from shoal.runtime.protocol import encode
from tests.fixtures import busybox_image

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: containers use namespaces, mounts and cgroups"),
    pytest.mark.skipif(not os.path.exists(busybox_image.BUSYBOX), reason="needs Debian's busybox-static"),
]
SECRET = b"runtime-files-secret-7f3a9c"


@pytest.fixture(scope="module")
def tarballs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("images")
    paths = {"busybox": d / "busybox.tar", "evil": d / "evil.tar"}
    busybox_image.build(str(paths["busybox"]))
    busybox_image.build(str(paths["evil"]), tag="evil:1", extra_layers=[{"run/secrets": ("symlink", "/tmp/evil-target")}])
    return paths


def files_under(root: Path) -> bytes:
    """Every regular file's bytes under ``root`` (what a thief with the disk would read)."""
    out = b""
    for r, _ds, fs in os.walk(root):
        for n in fs:
            p = os.path.join(r, n)
            if os.path.isfile(p) and not os.path.islink(p):
                try:
                    with open(p, "rb") as f:
                        out += f.read()
                except OSError:
                    pass
    return out


async def test_files_are_placed_read_only_with_owner_and_mode_and_never_on_disk(rt: Runtime, tarballs: dict[str, Path], tmp_path: Path) -> None:
    await rt.load_image(tarballs["busybox"])
    script = "stat -c '%u %g %a' /run/secrets/db /etc/app.conf; md5sum /run/secrets/db | cut -d' ' -f1; cat /etc/app.conf; echo; echo x > /run/secrets/db || echo read-only; sleep 30"
    await rt.create(ContainerConfig(id="f1", image="busybox", args=["sh", "-c", script]))
    files = [ContainerFile("/run/secrets/db", SECRET, 1000, 50, 0o400), ContainerFile("/etc/app.conf", b"port=80", mode=0o444)]
    await rt.start("f1", files=files)
    for _ in range(100):
        log = logs.text((await rt.inspect("f1")).log_path)
        if "read-only" in log:
            break
        await asyncio.sleep(0.1)
    assert log.splitlines()[:4] == ["1000 50 400", "0 0 444", hashlib.md5(SECRET).hexdigest(), "port=80"]
    assert "read-only" in log
    state_dir = Path(rt.layout.root)
    assert SECRET not in files_under(state_dir)  # container dirs (upper layer, spec, state), launcher log
    with open("/proc/self/mountinfo") as f:
        assert "/run/secrets/db" not in f.read()  # the host's mount table never shows it
    await rt.stop("f1", 1)
    await rt.delete("f1")
    assert SECRET not in files_under(state_dir / "containers")


async def test_a_symlinked_secrets_dir_in_the_image_cannot_lead_the_file_to_the_host(rt: Runtime, tarballs: dict[str, Path]) -> None:
    await rt.load_image(tarballs["evil"])
    await rt.create(ContainerConfig(id="f2", image="evil:1", args=["cat", "/run/secrets/db"]))
    await rt.start("f2", files=[ContainerFile("/run/secrets/db", SECRET)])
    info = await asyncio.wait_for(rt.wait("f2"), 20)
    assert not os.path.exists("/tmp/evil-target")  # resolved inside the container's root, not the host's
    assert logs.text(info.log_path).strip() == SECRET.decode()


async def test_bad_targets_are_refused_before_anything_runs(rt: Runtime, tarballs: dict[str, Path]) -> None:
    await rt.load_image(tarballs["busybox"])
    await rt.create(ContainerConfig(id="f3", image="busybox", args=["true"]))
    for bad, err in [("run/x", "must be an absolute path"), ("/proc/x", "reserved"), ("/", "reserved")]:
        with pytest.raises(ConfigError, match=err):
            await rt.start("f3", files=[ContainerFile(bad, b"x")])
    with pytest.raises(ConfigError, match="given twice"):
        await rt.start("f3", files=[ContainerFile("/a", b"x"), ContainerFile("/a/", b"y")])
    with pytest.raises(StartError, match="a directory is there"):
        await rt.start("f3", files=[ContainerFile("/etc", b"x")])


async def test_host_image_gets_files_under_run_but_not_on_its_read_only_root(rt: Runtime) -> None:
    await rt.create(ContainerConfig(id="f4", image="host", args=["cat", "/run/secrets/db"]))
    await rt.start("f4", files=[ContainerFile("/run/secrets/db", SECRET)])
    info = await asyncio.wait_for(rt.wait("f4"), 20)
    assert logs.text(info.log_path).strip() == SECRET.decode()
    await rt.create(ContainerConfig(id="f5", image="host", args=["true"]))
    with pytest.raises(StartError, match="read-only"):
        await rt.start("f5", files=[ContainerFile("/shoal-test-config-that-cannot-exist", b"x")])


def test_a_failed_start_request_is_never_logged_with_its_files() -> None:
    line = encode({"op": "start", "id": "c", "files": [{"target": "/run/secrets/x", "data": "c2VjcmV0"}]})
    assert "c2VjcmV0" not in loggable(line)
    assert loggable(encode({"op": "kill", "id": "c"})).startswith('{"op":"kill"')
