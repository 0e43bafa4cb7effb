"""A worker pulls a cluster image it lacks: resolve on a manager, fetch missing layers, verify, commit.

The managers are real gRPC servers on loopback serving the Images API from memory; the layers are
real tars checked against their diff_ids and extracted into a real image store under tmp_path.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import grpc
import pytest

from shoal.proto import images_pb2 as ipb
from shoal.proto import images_pb2_grpc as igrpc
from shoal.runtime import ImageLoadError
from shoal.worker.image_pull import ImagePuller


def layer(files: dict[str, bytes]) -> tuple[str, bytes]:
    """(diff_id, uncompressed tar) of a layer holding ``files``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    blob = buf.getvalue()
    return "sha256:" + hashlib.sha256(blob).hexdigest(), blob


BASE = layer({"etc/hostname": b"base\n"})
APP = layer({"app/run.sh": b"#!/bin/sh\necho hi\n"})
CONFIG = {"config": {"Cmd": ["/app/run.sh"]}}
RECORD = ipb.ImageRecord(
    id="sha256:" + "ab" * 32,
    repo_tags=["app:1"],
    layers=[BASE[0], APP[0]],
    config_json=json.dumps(CONFIG),
    size=len(BASE[1]) + len(APP[1]),
)


class Manager(igrpc.ImagesServicer):
    """The Images API from memory: the records it knows, the layer blobs it holds, calls it saw."""

    def __init__(self, records: dict[str, ipb.ImageRecord], blobs: dict[str, bytes], down: bool = False) -> None:
        self.records, self.blobs, self.down = records, blobs, down
        self.pulled: list[str] = []

    async def Resolve(self, request, context):  # noqa: N802 (gRPC method name)
        if self.down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "store unavailable")
        if request.ref not in self.records:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no such image: {request.ref}")
        return self.records[request.ref]

    async def PullLayer(self, request, context):  # noqa: N802
        if request.diff_id not in self.blobs:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no layer {request.diff_id[:19]} here")
        self.pulled.append(request.diff_id)
        blob = self.blobs[request.diff_id]
        for i in range(0, len(blob), 512):  # several chunks
            yield ipb.ImageChunk(data=blob[i : i + 512])


@pytest.fixture
async def managers():
    """Start managers on loopback: ``await start(manager) -> address``."""
    servers: list[grpc.aio.Server] = []

    async def start(m: Manager) -> str:
        server = grpc.aio.server()
        igrpc.add_ImagesServicer_to_server(m, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for s in servers:
        await s.stop(0)


def puller(addrs: list[str], root) -> ImagePuller:
    return ImagePuller(lambda: addrs, grpc.aio.insecure_channel, str(root / "images"))


async def test_a_missing_image_is_pulled_layer_by_layer_and_committed(managers, tmp_path):
    m = Manager({"app:1": RECORD}, {BASE[0]: BASE[1], APP[0]: APP[1]})
    p = puller([await managers(m)], tmp_path)
    assert await p("app:1") is True
    assert m.pulled == [BASE[0], APP[0]]
    image = p.store.get("app:1")
    assert image.layers == [BASE[0], APP[0]] and image.config == CONFIG
    assert all(p.store.has_layer(d) for d in image.layers)


async def test_layers_the_node_already_has_are_not_pulled_again(managers, tmp_path):
    m = Manager({"app:1": RECORD}, {BASE[0]: BASE[1], APP[0]: APP[1]})
    p = puller([await managers(m)], tmp_path)
    await p("app:1")
    m.pulled.clear()
    assert await p("app:1") is True and m.pulled == []


async def test_an_image_the_cluster_does_not_know_is_not_pulled(managers, tmp_path):
    m = Manager({}, {})
    assert await puller([await managers(m)], tmp_path)("nosuch:1") is False


async def test_a_manager_that_cannot_answer_is_skipped_for_the_next(managers, tmp_path):
    sick = Manager({}, {}, down=True)
    well = Manager({"app:1": RECORD}, {BASE[0]: BASE[1], APP[0]: APP[1]})
    p = puller([await managers(sick), await managers(well)], tmp_path)
    assert await p("app:1") is True


async def test_a_layer_missing_on_one_manager_comes_from_another(managers, tmp_path):
    partial = Manager({"app:1": RECORD}, {BASE[0]: BASE[1]})
    full = Manager({"app:1": RECORD}, {BASE[0]: BASE[1], APP[0]: APP[1]})
    p = puller([await managers(partial), await managers(full)], tmp_path)
    assert await p("app:1") is True
    assert partial.pulled == [BASE[0]] and full.pulled == [APP[0]]


async def test_when_no_manager_answers_the_error_names_each_of_them(managers, tmp_path):
    a, b = await managers(Manager({}, {}, down=True)), await managers(Manager({}, {}, down=True))
    with pytest.raises(ImageLoadError, match=f"cannot resolve image app:1: {a}: store unavailable; {b}: store unavailable"):
        await puller([a, b], tmp_path)("app:1")


async def test_no_known_manager_says_so(tmp_path):
    with pytest.raises(ImageLoadError, match="no manager known"):
        await puller([], tmp_path)("app:1")


async def test_a_layer_nobody_holds_fails_the_pull_and_commits_nothing(managers, tmp_path):
    m = Manager({"app:1": RECORD}, {BASE[0]: BASE[1]})
    p = puller([await managers(m)], tmp_path)
    with pytest.raises(ImageLoadError, match=f"cannot pull layer {APP[0]}"):
        await p("app:1")
    assert p.store.images() == []


async def test_a_layer_that_does_not_match_its_digest_is_refused(managers, tmp_path):
    m = Manager({"app:1": RECORD}, {BASE[0]: APP[1], APP[0]: APP[1]})  # serves the wrong bytes for BASE
    p = puller([await managers(m)], tmp_path)
    with pytest.raises(ImageLoadError):
        await p("app:1")
    assert not p.store.has_layer(BASE[0]) and p.store.images() == []
