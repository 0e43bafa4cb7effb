"""Images as root: load (docker-save, OCI, gzip), overlay rootfs, whiteouts, config precedence,
mounts and volumes, --init, caps, image rm while in use, and bad archives that change nothing."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from shoal.runtime import (
    ConfigError,
    ContainerConfig,
    ContainerInfo,
    ImageInUse,
    ImageLoadError,
    ImageNotFound,
    Runtime,
    StartError,
    logs,
)
from tests.fixtures import busybox_image
from tests.fixtures.runtime import wait_for_log
from tests.timing import eventually

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: containers use namespaces, mounts and cgroups"),
    pytest.mark.skipif(not os.path.exists(busybox_image.BUSYBOX), reason="needs Debian's busybox-static"),
]


@pytest.fixture(scope="module")
def tarballs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("images")
    paths = {name: d / f"{name}.tar" for name in ("busybox", "oci", "layered", "baddigest")}
    busybox_image.build(str(paths["busybox"]))
    busybox_image.build(str(paths["oci"]), tag="bbo:1", oci=True, gzip_outer=True, gzip_layers=True,
                        config={"Entrypoint": ["/bin/echo", "entry"], "Cmd": ["from-cmd"], "WorkingDir": "/var",
                                "User": "app", "Env": ["PATH=/bin", "GREETING=hi"], "ExposedPorts": {"80/tcp": {}}})  # fmt: skip
    busybox_image.build(str(paths["layered"]), tag="layered:latest", extra_layers=[
        {"etc/group": busybox_image.WHITEOUT, "var/www": busybox_image.OPAQUE, "var/www/new.txt": b"new\n"},
    ])  # fmt: skip
    busybox_image.build(
        str(paths["baddigest"]), tag="bad:1", extra_layers=[{"x": b"x"}], corrupt_diff_id=True
    )
    data = paths["busybox"].read_bytes()
    paths["truncated"] = d / "truncated.tar"
    paths["truncated"].write_bytes(data[: len(data) // 2])
    paths["junk"] = d / "junk.tar"
    paths["junk"].write_bytes(b"not an archive\n" * 100)
    return paths


async def run(rt: Runtime, cid: str, **kw: object) -> tuple[ContainerInfo, str]:
    await rt.create(ContainerConfig(id=cid, **kw))  # type: ignore[arg-type]
    await rt.start(cid)
    info = await asyncio.wait_for(rt.wait(cid), 20)
    return info, logs.text(info.log_path)


def _store_files(rt: Runtime) -> set[str]:
    return {
        os.path.relpath(os.path.join(r, n), rt.image_root)
        for r, ds, fs in os.walk(rt.image_root)
        for n in ds + fs
    }


async def test_load_run_isolation_and_copy_on_write(rt: Runtime, tarballs: dict[str, Path]) -> None:
    assert await rt.load_image(tarballs["busybox"]) == ["Loaded image: busybox:latest"]
    [image] = await rt.images()
    assert image.repo_tags == ["busybox:latest"] and image.size > 1_000_000
    script = "echo changed > /etc/passwd; ps -o pid,comm; hostname; ls /work /tmp/shoal 2>&1; cat /proc/1/cgroup | grep -c pids; id -u"
    info, log = await run(rt, "c1", image="busybox", args=["sh", "-c", script], hostname="bb")
    assert info.exit_code == 0, log
    lines = log.splitlines()
    assert lines[1].split() == ["1", "sh"] and lines[2].split()[1] == "ps" and len(lines) >= 4
    assert "bb" in lines and "ls: /work: No such file or directory" in log
    layer = Path(rt.image_root, "layers", image.layers[0][7:])
    assert (layer / "etc/passwd").read_text().startswith("root:x:0:0")  # the layer is untouched
    assert (Path(rt.layout.upper("c1")) / "etc/passwd").read_text() == "changed\n"


async def test_whiteouts_and_opaque_dirs_hide_lower_files(rt: Runtime, tarballs: dict[str, Path]) -> None:
    await rt.load_image(tarballs["layered"])
    info, log = await run(rt, "w", image="layered", args=["sh", "-c", "ls /var/www; ls /etc"])
    assert info.exit_code == 0 and log.split() == ["new.txt", "passwd"]


async def test_oci_gzip_image_config_applies_like_docker(rt: Runtime, tarballs: dict[str, Path]) -> None:
    assert await rt.load_image(tarballs["oci"]) == ["Loaded image: bbo:1"]
    info, log = await run(rt, "a", image="bbo:1")
    assert log == "entry from-cmd\n"
    info, log = await run(rt, "b", image="bbo:1", args=["mine"])
    assert log == "entry mine\n"
    script = 'echo "$GREETING $EXTRA $(pwd) $(id -u)"'
    info, log = await run(rt, "c", image="bbo:1", entrypoint=["sh", "-c", script], env=["EXTRA=x"])
    assert log == "hi x /var 1000\n"
    info, log = await run(rt, "d", image="bbo:1", entrypoint=["sh", "-c", script], user="0", workdir="/tmp")
    assert log == "hi  /tmp 0\n"
    assert (await rt.inspect_image("bbo:1")).runtime_config["ExposedPorts"] == {"80/tcp": {}}


async def test_bad_archives_and_missing_images_change_nothing(rt: Runtime, tarballs: dict[str, Path]) -> None:
    await rt.load_image(tarballs["busybox"])
    before = _store_files(rt)
    for name, message in (
        ("baddigest", "digest mismatch"),
        ("truncated", "truncated"),
        ("junk", "not a tar"),
    ):
        with pytest.raises(ImageLoadError, match=message):
            await rt.load_image(tarballs[name])
        assert _store_files(rt) == before, name
    with pytest.raises(ImageNotFound, match="image nothere:1 not found"):
        await rt.create(ContainerConfig(id="x", image="nothere:1", args=["true"]))
    await rt.create(ContainerConfig(id="y", image="busybox", args=["no-such-binary"]))
    with pytest.raises(StartError, match='exec: "no-such-binary": executable file not found'):
        await rt.start("y")
    assert [c.id for c in await rt.list()] == ["y"]


async def test_image_rm_is_refused_while_a_container_uses_it(rt: Runtime, tarballs: dict[str, Path]) -> None:
    await rt.load_image(tarballs["busybox"])
    await rt.load_image(tarballs["layered"])
    await rt.create(ContainerConfig(id="user", image="busybox", args=["true"]))
    with pytest.raises(ImageInUse, match="container user is using it"):
        await rt.remove_image("busybox")
    await rt.delete("user")
    done = await rt.remove_image("busybox:latest")
    assert done[0] == "Untagged: busybox:latest" and done[-1].startswith("Deleted: sha256:")
    layered = await rt.inspect_image("layered")
    assert all(Path(rt.image_root, "layers", d[7:]).is_dir() for d in layered.layers)  # shared layer kept
    await rt.remove_image("layered")
    assert os.listdir(Path(rt.image_root, "layers")) == [] and await rt.images() == []


async def test_mounts_volumes_init_and_caps(rt: Runtime, tarballs: dict[str, Path], tmp_path: Path) -> None:
    await rt.load_image(tarballs["busybox"])
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "f").write_text("from host\n")
    mounts = [
        {"type": "bind", "source": str(host), "target": "/h", "readonly": True},
        {"type": "volume", "source": "vol1", "target": "/data"},
        {"type": "tmpfs", "target": "/scratch", "tmpfs_size": 1 << 20},
    ]
    script = "cat /h/f; touch /h/g 2>&1 | grep -c Read-only; echo kept > /data/v; df -k /scratch | tail -1 | awk '{print $2}'; grep CapEff /proc/self/status"
    info, log = await run(
        rt,
        "m",
        image="busybox",
        args=["sh", "-c", script],
        mounts=mounts,
        cap_drop=["ALL"],
        cap_add=["CHOWN"],
    )
    assert info.exit_code == 0 and log.splitlines() == [
        "from host",
        "1",
        "1024",
        "CapEff:\t0000000000000001",
    ], log
    info, log = await run(rt, "m2", image="busybox", args=["cat", "/data/v"], mounts=[mounts[1]])
    assert log == "kept\n"
    with pytest.raises(ImageInUse, match="volume is in use"):
        await rt.volume("rm", "vol1")
    with pytest.raises(ConfigError, match="bind source path does not exist"):
        await rt.create(
            ContainerConfig(
                id="bad",
                image="busybox",
                args=["true"],
                mounts=[{"type": "bind", "source": "/no/such", "target": "/x"}],
            )
        )
    await rt.delete("m")
    await rt.delete("m2")
    assert (await rt.volume("rm", "vol1"))["removed"] == "vol1"
    # --init: PID 1 forwards SIGTERM to a shell that would ignore it as PID 1, and reaps zombies
    await rt.create(
        ContainerConfig(id="i", image="busybox", args=["sh", "-c", "(sleep 1 &); sleep 30"], init=True)
    )
    await rt.start("i")

    # "sleep 1" has exited (a zombie shows as [sleep], not its args) and the init reaped it: a zombie
    # may show for a moment between the two (the VM's ps once caught it), never for 10 s
    async def orphan_reaped() -> bytes | None:
        out = (await rt.exec("i", ["ps", "-o", "stat,args"])).output
        return out if b"sleep 1\n" not in out and b"Z " not in out else None

    await eventually(orphan_reaped, 10, "the orphaned sleep's exit and its reaping by the init (no zombie left)")
    await rt.kill("i", signal.SIGTERM)
    info = await asyncio.wait_for(rt.wait("i"), 5)
    assert info.exit_code == 128 + signal.SIGTERM


async def test_userns_maps_root_to_an_unprivileged_host_range(rt: Runtime, tarballs: dict[str, Path]) -> None:
    await rt.load_image(tarballs["busybox"])
    script = "id -u; cat /proc/self/uid_map; echo x > /tmp/f && echo tmp-ok; echo y > /etc/z 2>/dev/null || echo etc-refused; sleep 30"
    await rt.create(
        ContainerConfig(id="u", image="busybox", args=["sh", "-c", script], userns=True, init=True)
    )
    info = await rt.start("u")
    status = Path(f"/proc/{info.pid}/status").read_text()
    assert "Uid:\t100000\t100000" in status  # seen from the host, root inside is uid 100000
    res = await rt.exec("u", ["sh", "-c", "id -u; ps -o comm | wc -l"])
    assert res.output.split()[0] == b"0", res.output
    await wait_for_log(info, "etc-refused")
    await rt.stop("u", grace_s=2)
    # stdout only: the shell's "can't create" goes to stderr, and the two pipes interleave freely
    lines = "".join(r["log"] for r in logs.records(info.log_path) if r["stream"] == "stdout").split("\n")
    assert (
        lines[0] == "0"
        and lines[1].split() == ["0", "100000", "65536"]
        and lines[2:4] == ["tmp-ok", "etc-refused"]
    ), lines
    with pytest.raises(ConfigError, match="userns needs an image"):
        await rt.create(ContainerConfig(id="h", image="host", args=["true"], userns=True))
