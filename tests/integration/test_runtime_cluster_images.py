"""Cluster images over real gRPC: load into one manager, replicate to another, pull on a node.

Two ImagesServicers share one store (as two managers share etcd) and serve on loopback; the test
loads a busybox tarball into the first, lets the second replicate the layer blobs (and become a
holder), pulls the image into a node's image store through the second, and checks that a tampered
blob is refused by its digest.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from shoal.manager.images import IMAGES, ImagesServicer
from shoal.manager.store import keys
from shoal.manager.store.memory import MemoryStore
from shoal.proto import images_pb2 as ipb
from shoal.proto import images_pb2_grpc as igrpc
from shoal.proto import types_pb2 as pb
from shoal.runtime import ContainerError, ImageLoadError
from shoal.runtime.image import ImageStore
from shoal.worker.image_pull import ImagePuller
from tests.fixtures import busybox_image

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: layer extraction keeps owners and device nodes"
)


async def _serve(svc: ImagesServicer) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    igrpc.add_ImagesServicer_to_server(svc, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture
async def managers(tmp_path: Path) -> AsyncIterator[tuple[MemoryStore, list[ImagesServicer], list[str]]]:
    store = MemoryStore()
    svcs = [ImagesServicer(store, tmp_path / name, name) for name in ("ma", "mb")]
    servers, addrs = [], []
    for svc in svcs:
        server, addr = await _serve(svc)
        servers.append(server)
        addrs.append(addr)
        await store.put(keys.key("manager", svc.node_id), keys.encode(pb.ManagerStatus(addr=addr)))
    try:
        yield store, svcs, addrs
    finally:
        for server in servers:
            await server.stop(None)
        await store.close()


def _chunks(path: Path) -> list[ipb.ImageChunk]:
    data = path.read_bytes()
    return [ipb.ImageChunk(data=data[i : i + 100_000]) for i in range(0, len(data), 100_000)]


async def test_load_replicate_pull(managers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, (ma, mb), (addr_a, addr_b) = managers
    tar = tmp_path / "bb.tar"
    busybox_image.build(str(tar), tag="cbox:1")
    async with grpc.aio.insecure_channel(addr_a) as ch:
        stub = igrpc.ImagesStub(ch)
        reply = await stub.Load(iter(_chunks(tar)))
        assert list(reply.lines) == ["Loaded image: cbox:1"]
        [rec] = (await stub.List(ipb.ListImagesRequest())).images
        assert list(rec.holders) == ["ma"] and rec.repo_tags == ["cbox:1"]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Load(iter([ipb.ImageChunk(data=b"junk" * 50)]))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "invalid image archive" in (
            err.value.details() or ""
        )
    assert not mb.has_blob(rec.layers[0])
    assert await mb.replicate_once(grpc.aio.insecure_channel) == 1
    assert mb.has_blob(rec.layers[0])
    kv = await store.get(IMAGES + rec.id[7:])
    assert kv is not None and sorted(ipb.ImageRecord.FromString(kv.value).holders) == ["ma", "mb"]
    assert await mb.replicate_once(grpc.aio.insecure_channel) == 0

    node_root = tmp_path / "node-images"
    puller = ImagePuller(lambda: [addr_b], grpc.aio.insecure_channel, str(node_root))
    assert await puller("cbox:1") is True
    local = ImageStore(str(node_root)).get("cbox:1")
    assert local.id == rec.id and (Path(node_root, "layers", rec.layers[0][7:], "bin", "busybox")).is_file()
    assert await puller("nothere:1") is False


async def test_a_tampered_blob_is_refused(managers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, (ma, mb), (addr_a, _) = managers
    tar = tmp_path / "bb.tar"
    busybox_image.build(str(tar), tag="tbox:1")
    async with grpc.aio.insecure_channel(addr_a) as ch:
        await igrpc.ImagesStub(ch).Load(iter(_chunks(tar)))
    [rec] = await ma.records()
    blob = Path(ma.blobs, rec.layers[0][7:])
    data = bytearray(blob.read_bytes())
    data[-2000] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(ContainerError, match="no holder could send it"):  # the only holder's copy is bad
        await mb.replicate_once(grpc.aio.insecure_channel)
    assert not mb.has_blob(rec.layers[0]) and not os.listdir(mb.images.tmp_dir)
    node_root = tmp_path / "node-images"
    puller = ImagePuller(lambda: [addr_a], grpc.aio.insecure_channel, str(node_root))
    with pytest.raises(ImageLoadError, match="digest mismatch"):
        await puller("tbox:1")
    assert not list(Path(node_root, "layers").iterdir()) and not list(Path(node_root, "tmp").iterdir())
