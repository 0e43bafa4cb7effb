"""Exploits against a volume's subpath: it must never mount anything outside the volume.

A volume's content is written by containers, so an attacker who runs one container with the volume can
leave a symlink in it (``esc -> /``, ``esc -> ../../..``) and then deploy a service mounting
``volume-subpath=esc``; or swap the subpath's directory for such a symlink between the create (which
checked it) and the start. The spec's own text is refused first (``..``, absolute, a template that
expands to ``..``) by the manager and by the runtime; what the volume holds is resolved beneath the
volume's directory when the container is created and again when PID 1 mounts it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from shoal import spec as specs
from shoal.proto import types_pb2 as pb
from shoal.runtime import ConfigError, ContainerConfig, Runtime, StartError, logs
from shoal.runtime.spec import validate as validate_container
from tests.fixtures import busybox_image

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: containers use namespaces, mounts and cgroups")
needs_busybox = pytest.mark.skipif(not os.path.exists(busybox_image.BUSYBOX), reason="needs Debian's busybox-static")


def _service(mount: pb.Mount, labels: dict[str, str] | None = None) -> pb.ServiceSpec:
    s = pb.ServiceSpec(name="evil", labels=labels or {})
    s.container.CopyFrom(pb.ContainerSpec(image="busybox", mounts=[mount]))
    return s


@pytest.mark.parametrize("subpath", ["..", "../etc", "a/../../etc", "/etc", "a/\x00"])
def test_a_subpath_out_of_the_volume_is_refused_by_the_manager_and_the_runtime(subpath: str) -> None:
    mount = pb.Mount(type=pb.Mount.VOLUME, source="data", target="/data", volume_subpath=subpath)
    with pytest.raises(specs.SpecError, match="volume subpath"):
        specs.validate(_service(mount), images=frozenset({"busybox"}))
    with pytest.raises(ConfigError, match="volume subpath"):
        validate_container(ContainerConfig(id="c", image="busybox", args=["true"], mounts=[
            {"type": "volume", "source": "data", "target": "/data", "volume_subpath": subpath}]))


def test_a_template_cannot_expand_a_subpath_out_of_the_volume() -> None:
    mount = pb.Mount(type=pb.Mount.VOLUME, source="data", target="/data", volume_subpath='{{index .Service.Labels "p"}}')
    with pytest.raises(specs.SpecError, match="volume subpath '../../etc'"):
        specs.validate(_service(mount, {"p": "../../etc"}), images=frozenset({"busybox"}))
    specs.validate(_service(mount, {"p": "logs"}), images=frozenset({"busybox"}))
    with pytest.raises(ConfigError, match="templates are only expanded for services"):
        validate_container(ContainerConfig(id="c", image="busybox", args=["true"], mounts=[
            {"type": "volume", "source": "data", "target": "/data", "volume_subpath": "{{.Task.Slot}}"}]))


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("images") / "busybox.tar"
    busybox_image.build(str(path))
    return path


async def _run(rt: Runtime, cid: str, script: str, mounts: list[dict]) -> str:
    await rt.create(ContainerConfig(id=cid, image="busybox", args=["sh", "-c", script], mounts=mounts))
    await rt.start(cid)
    info = await asyncio.wait_for(rt.wait(cid), 20)
    return logs.text(info.log_path)


@pytest.mark.root
@needs_root
@needs_busybox
@pytest.mark.parametrize("link", ["/", "../../../../../..", "/etc", "inner/../../.."])
async def test_a_symlink_a_container_left_in_the_volume_does_not_lead_out(rt: Runtime, tarball: Path, link: str) -> None:
    await rt.load_image(tarball)
    vol = {"type": "volume", "source": "trap", "target": "/data"}
    await _run(rt, "attacker", f"mkdir -p /data/inner && ln -s '{link}' /data/esc", [vol])
    for subpath in ("esc", "esc/etc"):
        with pytest.raises(ConfigError, match="leads out of the volume"):
            await rt.create(ContainerConfig(id="victim", image="busybox", args=["ls", "/data"],
                                            mounts=[{**vol, "volume_subpath": subpath}]))
    assert [c.id for c in await rt.list()] == ["attacker"], "nothing was created"


@pytest.mark.root
@needs_root
@needs_busybox
async def test_a_subpath_swapped_for_a_symlink_after_the_create_is_refused_at_the_start(
    rt: Runtime, tarball: Path, tmp_path: Path
) -> None:
    await rt.load_image(tarball)
    secret = tmp_path / "host-secret"
    secret.mkdir()
    (secret / "key").write_text("host only")
    vol = {"type": "volume", "source": "swap", "target": "/data", "volume_subpath": "app"}
    await rt.create(ContainerConfig(id="victim", image="busybox", args=["cat", "/data/key"], mounts=[vol]))
    volume = Path((await rt.volume("inspect", "swap"))["volume"]["mountpoint"])
    (volume / "app").rmdir()  # as a container holding the volume could do between create and start
    (volume / "app").symlink_to(secret)
    with pytest.raises(StartError, match="leads out of the volume"):
        await rt.start("victim")
    assert (secret / "key").read_text() == "host only"
